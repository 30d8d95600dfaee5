"""The native API's NinjaAPI instance: bearer keys, and errors in OpenAI's shape."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer

from gateway.calls import authenticate
from gateway.errors import GatewayError, from_orchestrator_error
from gateway.keys import KeyInfo
from gateway.validation import body_text_check
from routing.errors import OrchestratorError

log = logging.getLogger("gateway")


class BearerKey(HttpBearer):
    """`Authorization: Bearer ork-…` (the same keys as /v1/)."""

    async def __call__(self, request: HttpRequest) -> KeyInfo:  # type: ignore[override]
        return await authenticate(request.headers.get("authorization"))

    def authenticate(self, request: HttpRequest, token: str) -> Any:  # pragma: no cover - unused
        return None


class BodyParser(Parser):
    """JSON bodies, with the chat endpoint's check for text that cannot be encoded as UTF-8
    (a 400 naming the field, see `_http_error`)."""

    def parse_body(self, request: HttpRequest) -> Any:
        data = super().parse_body(request)
        body_text_check(request.body, data)
        return data


api = NinjaAPI(
    title="Orchestrator API",
    version="1",
    description=(
        "Route, consensus and parallel calls through Orchestrator. Authenticate with an API key: "
        "`Authorization: Bearer ork-…`. Errors use OpenAI's shape: "
        '`{"error": {"message", "type", "param", "code"}}`. The OpenAI-compatible endpoints '
        "are `POST /v1/chat/completions` and `GET /v1/models` (see [the gateway guide](/docs/gateway/))."
    ),
    auth=BearerKey(),
    parser=BodyParser(),
    urls_namespace="gateway_api",
    # The endpoints take bearer keys; the docs page and schema are pages like any other: login.
    docs_decorator=login_required,
)


# -- Errors in OpenAI's shape ------------------------------------------------------------


def respond(exc: GatewayError) -> HttpResponse:
    response = HttpResponse(exc.body(), status=exc.status, content_type="application/json")
    for name, value in exc.headers.items():
        response[name] = value
    return response


@api.exception_handler(GatewayError)
def _gateway_error(request: HttpRequest, exc: GatewayError) -> HttpResponse:
    return respond(exc)


@api.exception_handler(OrchestratorError)
def _engine_error(request: HttpRequest, exc: OrchestratorError) -> HttpResponse:
    return respond(from_orchestrator_error(exc))


def _loc_param(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "payload", "path", "query")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    first = exc.errors[0] if exc.errors else {}
    param = _loc_param(first.get("loc", ())) or None
    message = first.get("msg", "Invalid request.")
    if param:
        message = f"{param}: {message}"
    return respond(GatewayError(400, message, code="invalid_request", param=param))


@api.exception_handler(AuthenticationError)
def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return respond(
        GatewayError(401, "Missing API key: send 'Authorization: Bearer ork-…'.", code="missing_api_key")
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, GatewayError):  # ninja wraps what the body parser raised
        return respond(exc.__cause__)
    return respond(GatewayError(exc.status_code, str(exc), code="invalid_request"))


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("native API: unexpected error")
    return respond(GatewayError(500, "Internal error; it has been logged.", code="internal_error"))
