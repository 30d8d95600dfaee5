"""The errors the engine raises and acts on.

Provider clients raise only `ProviderError` subclasses (mapped from SDK exceptions in one
chokepoint); the engine decides retries and fallbacks from `error_class` alone. Callers of
the engine see `OrchestratorError` subclasses, each with an HTTP status the gateway uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from routing.engine.types import AttemptInfo

ErrorClass = Literal["transient", "model_permanent", "request_invalid"]


# -- What a provider call can fail with ------------------------------------------------


class ProviderError(Exception):
    error_class: ErrorClass = "transient"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        retry_after_s: float | None = None,
        timeout: bool = False,
        local: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.retry_after_s = retry_after_s
        self.timeout = timeout
        # Raised before any byte reached the provider (text the wire cannot carry, a request
        # the SDK refused to build): the provider is not to blame.
        self.local = local
        # Filled in by the transport chokepoint.
        self.latency_ms: float | None = None
        self.partial_text: str = ""
        self.output_tokens_so_far: int = 0

    @property
    def blames_provider(self) -> bool:
        """Whether this failure counts against the provider's circuit breaker: not when the
        request was at fault, nor when it never left this process."""
        return self.error_class != "request_invalid" and not self.local


class TransientError(ProviderError):
    """429, 5xx, timeout, connection reset: retry with backoff, then the next model."""

    error_class: ErrorClass = "transient"


class ModelPermanentError(ProviderError):
    """401/403, unknown model, context too long, content filtered: no retry, next model."""

    error_class: ErrorClass = "model_permanent"


class RequestInvalidError(ProviderError):
    """The caller's request is malformed (the provider said so, or it could not even be sent):
    fail at once with the reason."""

    error_class: ErrorClass = "request_invalid"


# -- What callers of the engine see ----------------------------------------------------


class OrchestratorError(Exception):
    http_status = 500
    code = "orchestrator_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(OrchestratorError):
    """Empty messages, a bad parameter, a prompt longer than every candidate's context."""

    http_status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param  # the caller's field at fault, when one is (e.g. "top_p")
        if code is not None:
            self.code = code


class NotFound(OrchestratorError):
    http_status = 404
    code = "not_found"


class UnknownRoute(NotFound):
    code = "unknown_route"


class UnknownModel(NotFound):
    code = "unknown_model"


class UnknownChain(NotFound):
    code = "unknown_chain"


class NoCandidate(OrchestratorError):
    """No enabled model can serve the request; `excluded` says why each model was skipped."""

    http_status = 422
    code = "no_candidate"

    def __init__(self, message: str, *, excluded: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.excluded = excluded or {}


class ProviderKeyMissing(OrchestratorError):
    http_status = 503
    code = "provider_key_missing"


class AllAttemptsFailed(OrchestratorError):
    """Every model tried failed. 504 when the last failure was a timeout, 502 otherwise,
    503 when every candidate's circuit was open."""

    code = "all_attempts_failed"

    def __init__(
        self,
        message: str,
        *,
        attempts: list[AttemptInfo] | None = None,
        http_status: int = 502,
        trace_id: str = "",
    ) -> None:
        super().__init__(message)
        self.attempts = attempts or []
        self.http_status = http_status
        self.trace_id = trace_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "trace_id": self.trace_id,
            "attempts": [a.to_dict() for a in self.attempts],
        }
