"""The native API at /api/v1/, mirroring the Python API (`routing.orchestrator`).

OpenAPI schema at /api/v1/openapi.json, docs at /api/v1/docs (Swagger UI from the assets
bundled in django-ninja, served from our static files: no CDN). Same bearer keys, limits,
budgets and error shape as /v1/, through the same sequence (gateway/calls.py).

    app.py        the NinjaAPI instance, bearer auth, errors in OpenAI's shape
    schemas.py    request and response schemas (the OpenAPI document)
    endpoints.py  route, consensus and parallel: adapters over gateway/calls.py
"""

from __future__ import annotations

from typing import Any

from gateway.api import endpoints
from gateway.api.app import api

__all__ = ["api", "endpoints", "urls"]


def urls() -> tuple[list[Any], str, str]:
    """The API's URL patterns, open to requests without a session (keys are the gate)."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback.login_required = False  # type: ignore[union-attr]
    return patterns, app_name, namespace
