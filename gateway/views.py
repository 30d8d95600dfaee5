"""Django views for the gateway's route table (the same handlers the ASGI front in
gateway/asgi.py serves faster).

They authenticate with bearer keys, never cookies: CSRF-exempt and open to anonymous
sessions (the key check is the gate).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from gateway.http import GatewayResponse, response_finish
from gateway.routes import UNKNOWN, Route, route_dispatch, route_match

View = Any  # an async Django view


def _to_django(resp: GatewayResponse) -> HttpResponseBase:
    out: HttpResponseBase
    if resp.stream is not None:
        out = StreamingHttpResponse(resp.stream, status=resp.status, content_type=resp.content_type)
    else:
        out = HttpResponse(resp.body, status=resp.status, content_type=resp.content_type)
    for name, value in resp.headers.items():
        out[name] = value
    return out


async def _body(request: HttpRequest) -> AsyncIterator[bytes]:
    yield request.body  # read only once the declared length has passed the limit


async def _serve(request: HttpRequest, route: Route, params: dict[str, str]) -> HttpResponseBase:
    resp = await route_dispatch(
        route,
        params,
        method=request.method or "GET",
        path=request.path,
        authorization=request.headers.get("authorization"),
        api_key=request.headers.get("x-api-key"),
        content_length=request.META.get("CONTENT_LENGTH"),
        chunks=_body(request),
    )
    if resp.stream is not None:
        resp.stream = _then_finish(resp.stream, resp)
    else:
        await response_finish(resp)  # Django sends after the view returns: account first
    return _to_django(resp)


async def _then_finish(stream: AsyncIterator[bytes], resp: GatewayResponse) -> AsyncGenerator[bytes]:
    """The stream's chunks, then its `after` work once Django has sent them (or the client
    has gone and Django closed the stream)."""
    try:
        async for chunk in stream:
            yield chunk
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
        await response_finish(resp)


def route_view(route: Route) -> View:
    @csrf_exempt
    @login_not_required
    async def view(request: HttpRequest, **params: str) -> HttpResponseBase:
        return await _serve(request, route, params)

    view.__name__ = route.name
    return view


def path_view() -> View:
    """Any other path under /v1: matched against the route table as the ASGI front does (a
    trailing slash), else `UNKNOWN` (a 404 in OpenAI's shape)."""

    @csrf_exempt
    @login_not_required
    async def view(request: HttpRequest) -> HttpResponseBase:
        route, params = route_match(request.path) or (UNKNOWN, {})
        return await _serve(request, route, params)

    view.__name__ = "unknown_path"
    return view
