"""Errors the gateway answers with, in OpenAI's JSON shape:

    {"error": {"message": "...", "type": "invalid_request_error", "param": "messages", "code": "..."}}

`type` follows OpenAI's vocabulary so SDKs map statuses to their own exception classes.

A target that can never answer as configured (its provider's key variable unset, the model
or provider disabled, nothing able to serve the request) is a 400 `model_not_available`: the
OpenAI SDKs retry 408, 409, 429 and every 5xx, and retrying cannot help until an operator acts.
Transient outages (every attempt failed, every circuit open) keep 502/503/504.
"""

from __future__ import annotations

import json
from typing import Any

from routing.errors import AllAttemptsFailed, NoCandidate, OrchestratorError, ProviderKeyMissing

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def type(self) -> str:
        return _TYPE_BY_STATUS.get(
            self.status, "api_error" if self.status >= 500 else "invalid_request_error"
        )

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        error.update(self.extra)
        return {"error": error}

    def body(self) -> bytes:
        return json.dumps(self.to_dict()).encode()


def invalid(message: str, *, param: str | None = None, code: str = "invalid_request") -> GatewayError:
    return GatewayError(400, message, code=code, param=param)


def from_orchestrator_error(exc: OrchestratorError) -> GatewayError:
    """The engine's errors carry their HTTP status; keep their detail (attempts, exclusions)."""
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, AllAttemptsFailed):
        extra["attempts"] = [a.to_dict() for a in exc.attempts]
        if exc.trace_id:
            extra["trace_id"] = exc.trace_id
            headers["x-orchestrator-trace-id"] = exc.trace_id
        headers["x-orchestrator-attempts"] = str(len(exc.attempts))
    if isinstance(exc, NoCandidate) and exc.excluded:
        extra["excluded"] = exc.excluded
    status = int(getattr(exc, "http_status", 500) or 500)
    code = exc.code
    if isinstance(exc, ProviderKeyMissing | NoCandidate):
        status, code = 400, "model_not_available"
    param = getattr(exc, "param", None) or (
        "model" if status == 404 or code == "model_not_available" else None
    )
    return GatewayError(status, exc.message, code=code, param=param, headers=headers, extra=extra)
