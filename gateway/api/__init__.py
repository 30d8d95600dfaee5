"""The native API at /api/v1/, mirroring the Python API (`routing.orchestrator`).

OpenAPI schema at /api/v1/openapi.json, docs at /api/v1/docs (Swagger UI from the assets
bundled in django-ninja, served from our static files: no CDN). Same bearer keys, limits,
budgets and error shape as /v1/, through the same sequence (gateway/calls.py).

    app.py        the NinjaAPI instance, bearer auth, errors in OpenAI's shape
    schemas.py    request and response schemas (the OpenAPI document)
    endpoints.py  route, consensus and parallel: adapters over gateway/calls.py
"""

from __future__ import annotations

import functools
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt

from gateway.api import endpoints
from gateway.api.app import api, respond
from gateway.errors import GatewayError

__all__ = ["api", "endpoints", "urls"]


def _json_not_allowed(response: HttpResponse) -> HttpResponse:
    """ninja answers a wrong method in plain text: the API's JSON error instead."""
    if not isinstance(response, HttpResponseNotAllowed):
        return response
    allowed = response["Allow"]
    return respond(
        GatewayError(
            405, f"Method not allowed; use {allowed}.", code="method_not_allowed", headers={"allow": allowed}
        )
    )


def _shaped(view: Any) -> Any:
    if iscoroutinefunction(view):

        async def async_wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return _json_not_allowed(await view(request, *args, **kwargs))

        return functools.wraps(view)(async_wrapped)

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return _json_not_allowed(view(request, *args, **kwargs))

    return functools.wraps(view)(wrapped)


@csrf_exempt
@login_not_required
def _unknown(request: HttpRequest) -> HttpResponse:
    return respond(
        GatewayError(
            404,
            f"Invalid URL ({request.method} {request.path}): no such endpoint. The native API's "
            "endpoints are listed at /api/v1/docs.",
            code="unknown_url",
        )
    )


def urls() -> tuple[list[Any], str, str]:
    """The API's URL patterns, open to requests without a session (keys are the gate); a
    wrong method or an unknown path under /api/v1/ is a JSON error in the API's shape."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback = _shaped(pattern.callback)  # type: ignore[union-attr]
        pattern.callback.login_required = False  # type: ignore[union-attr]
    return [*patterns, re_path(r"^.*$", _unknown)], app_name, namespace
