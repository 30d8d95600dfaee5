"""The gateway's route table: one line per endpoint. The lean ASGI front (gateway/asgi.py)
matches paths against it; gateway/urls.py makes Django's URL patterns from it (the same
handlers; Django's are what the test client and `runserver` without the front reach).

A path matches with or without a trailing slash; a route with `tail` also matches
`<path>/<anything>`, the rest of the path given to the endpoint as `params[tail]`. Any other
path under /v1 is the gateway's too: a 404 in OpenAI's error shape (never Django's HTML page).
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass

from gateway.calls import Endpoint, endpoint_serve
from gateway.chat import CHAT_COMPLETIONS
from gateway.completions import COMPLETIONS
from gateway.embeddings import EMBEDDINGS
from gateway.errors import GatewayError
from gateway.http import GatewayRequest, GatewayResponse, body_read, method_not_allowed
from gateway.listing import MODEL_RETRIEVE, MODELS_LIST
from gateway.messages import MESSAGES, MESSAGES_COUNT_TOKENS
from gateway.responses import RESPONSE_ITEM, RESPONSES


@dataclass(frozen=True)
class Route:
    path: str  # without a trailing slash, e.g. "/v1/models"
    method: str  # or several: "GET, DELETE" (the endpoint reads request.method)
    endpoint: Endpoint  # type: ignore[type-arg]
    name: str
    tail: str | None = None

    @property
    def django_path(self) -> str:
        path = self.path.lstrip("/")
        return f"{path}/<path:{self.tail}>" if self.tail else path

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.method.split(","))


ROUTES: tuple[Route, ...] = (
    Route("/v1/chat/completions", "POST", CHAT_COMPLETIONS, "chat_completions"),
    Route("/v1/embeddings", "POST", EMBEDDINGS, "embeddings"),
    Route("/v1/completions", "POST", COMPLETIONS, "completions"),
    Route("/v1/messages", "POST", MESSAGES, "messages"),
    Route("/v1/messages/count_tokens", "POST", MESSAGES_COUNT_TOKENS, "messages_count_tokens"),
    Route("/v1/models", "GET", MODELS_LIST, "models"),
    Route("/v1/models", "GET", MODEL_RETRIEVE, "model", tail="model_id"),
    Route("/v1/responses", "POST", RESPONSES, "responses"),
    Route("/v1/responses", "GET, DELETE", RESPONSE_ITEM, "response", tail="response_id"),
)

PREFIX = "/v1/"  # every route's path starts with it


class _UnknownPath(Endpoint[None, None]):
    admits = False


# What a path under /v1 that no route serves matches: answered 404, any method.
UNKNOWN = Route(PREFIX, "*", _UnknownPath(), "unknown")


def _unknown_url(method: str, path: str) -> GatewayError:
    served = ", ".join(f"{r.method} {r.path}" + (f"/{{{r.tail}}}" if r.tail else "") for r in ROUTES)
    return GatewayError(
        404,
        f"Invalid URL ({method} {path}): no such endpoint. The gateway serves {served}.",
        code="unknown_url",
    )


def route_match(path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for a request path and its path parameters; `UNKNOWN` for another path under
    /v1; None when the path is not the gateway's."""
    if not path.startswith(PREFIX):
        return (UNKNOWN, {}) if path == PREFIX[:-1] else None
    path = path.rstrip("/")
    for route in ROUTES:
        if route.tail is None:
            if path == route.path:
                return route, {}
        elif path.startswith(route.path + "/"):
            return route, {route.tail: path[len(route.path) + 1 :]}
    return UNKNOWN, {}


async def route_dispatch(
    route: Route,
    params: dict[str, str],
    *,
    method: str,
    path: str,
    authorization: str | None,
    content_length: str | None,
    chunks: AsyncIterable[bytes],
    api_key: str | None = None,
) -> GatewayResponse:
    """Serve one request on a matched route: 404 for `UNKNOWN`, 405 for another method (both
    before reading the body), the body read under its limit, then the endpoint's sequence
    (gateway/calls.py)."""
    endpoint = route.endpoint
    try:
        if route is UNKNOWN:
            raise _unknown_url(method, path)
        if method not in route.methods:
            raise method_not_allowed(route.method)
        body = await body_read(declared=content_length, chunks=chunks) if method == "POST" else b""
    except GatewayError as exc:
        return endpoint.error(exc)
    return await endpoint_serve(
        endpoint,
        GatewayRequest(
            method=method, path=path, authorization=authorization, api_key=api_key, body=body, params=params
        ),
    )
