"""Errors in Anthropic's shape, for every failure of /v1/messages (the Anthropic SDKs map the
status to their exception classes and read `error.type` and `error.message`):

    {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens is required: …"}}

The message names the field for a 400; an engine failure keeps its detail (`attempts`,
`trace_id`) beside the message, and the `x-orchestrator-*` and `retry-after` headers stay.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.errors import GatewayError
from gateway.http import GatewayResponse

TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}

_KEY_HINT = (
    "Missing API key: send 'x-api-key: ork-…' (or 'Authorization: Bearer ork-…'). Keys are made "
    "in the admin or with `manage.py create_api_key`."
)


def anthropic_error_type(status: int) -> str:
    return TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def anthropic_error_dict(exc: GatewayError) -> dict[str, Any]:
    message = _KEY_HINT if exc.code == "missing_api_key" else exc.message
    error: dict[str, Any] = {**exc.extra, "type": anthropic_error_type(exc.status), "message": message}
    return {"type": "error", "error": error}


def anthropic_error_response(exc: GatewayError) -> GatewayResponse:
    return GatewayResponse(exc.status, dict(exc.headers), json.dumps(anthropic_error_dict(exc)).encode())
