"""How the chokepoint maps a provider's exception to one of the three error classes of
`routing.errors` (transient / model-permanent / request-invalid): status codes, the SDKs' and
aiohttp's exception types, Retry-After, and the marker words of context-length, content-filter
and missing-model errors. Used by `routing.providers.transport`, nothing else."""

from __future__ import annotations

import logging
import traceback
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from routing.errors import (
    ModelPermanentError,
    ProviderError,
    RequestInvalidError,
    TransientError,
)
from routing.providers.redaction import secrets_redact

# The chokepoint's logger: a mapping warning reads as the transport's, as it always has.
logger = logging.getLogger("routing.providers.transport")

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "prompt is too long",
    "maximum context length",
    "context length",
    "context window",
    "too many tokens",
    "input is too long",
    "exceeds the maximum number of tokens",  # Gemini
)
_CONTENT_FILTER_MARKERS = (
    "content_filter",
    "content_policy",
    "content filtering",
    "content management policy",
    "responsibleaipolicyviolation",
    "safety",
)
_MODEL_MISSING_MARKERS = ("model_not_found", "does not exist", "not found", "deploymentnotfound")


def map_exception(
    exc: BaseException, *, timeout_s: float | None = None, env_names: tuple[str, ...] = ()
) -> ProviderError:
    """Turn any exception from a provider call into one of our three error classes.

    openai and anthropic SDK errors are recognised by their shape (`status_code`, `body`,
    `response`), so both SDKs (and any OpenAI-compatible wrapper) map the same way."""
    if isinstance(exc, ProviderError):
        return exc
    local = _raised_before_sending(exc)
    if local is not None:
        return local
    if isinstance(exc, TimeoutError):
        return TransientError(f"No answer within the {_seconds(timeout_s)} timeout.", timeout=True)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and getattr(exc, "response", None) is not None:
        return _map_status(exc, status)
    name = type(exc).__name__
    module = type(exc).__module__.split(".")[0]
    root = _aiohttp_root(exc)
    if root is not None:
        # The SDKs' aiohttp transport maps every aiohttp connection error (a reset, a server
        # that closed the connection) to an httpx2 *timeout*; its root cause says what it was.
        if isinstance(root, TimeoutError):
            return TransientError(f"No answer within the {_seconds(timeout_s)} timeout.", timeout=True)
        return TransientError(f"Connection to the provider failed: {type(root).__name__}: {root}"[:340])
    if name == "APIError" and module in {"openai", "anthropic"}:
        # An error event inside a stream that had started with HTTP 200.
        return _map_status(exc, 0)
    if "Timeout" in name:
        # openai/anthropic APITimeoutError, httpx2.TimeoutException and friends.
        return TransientError(f"No answer within the {_seconds(timeout_s)} timeout.", timeout=True)
    if name == "APIConnectionError" or module in {"httpx2", "httpx", "httpcore", "httpcore2", "h11"}:
        return TransientError(f"Connection to the provider failed: {_describe(exc)}")
    if isinstance(exc, ConnectionError | OSError):
        return TransientError(f"Connection to the provider failed: {_describe(exc)}")
    if module in {"openai", "anthropic"} and name == "APIResponseValidationError":
        return TransientError(f"The provider sent an answer we could not read: {_describe(exc)}")
    # Anything else is a bug in a client or an unexpected SDK state: treat as transient so
    # the engine moves on, and log it with its traceback to make it findable.
    # The traceback is logged as text cleared of secrets (the exception may repeat one).
    logger.warning(
        "Unexpected exception from a provider client:\n%s",
        secrets_redact("".join(traceback.format_exception(exc)), env_names=env_names).rstrip(),
    )
    return TransientError(f"Unexpected provider failure ({name}): {_describe(exc)}")


# The functions that build a request before anything is sent: the SDKs' (openai and anthropic
# alike) and the lean HTTP path's body encoder (routing/providers/openai_style/lean.py).
_REQUEST_BUILDERS = frozenset(
    {"_build_request", "_build_headers", "_prepare_options", "_prepare_request", "lean_body_encode"}
)


def _raised_before_sending(exc: BaseException) -> RequestInvalidError | None:
    """A RequestInvalidError (`local`) when `exc` was raised before any byte reached the
    provider: text the wire cannot carry (a lone surrogate), or the SDK refusing to build the
    request. Such a request fails the same way on every model, and is no fault of the provider."""
    if isinstance(exc, UnicodeEncodeError):
        return RequestInvalidError(
            f"The request could not be sent: its text cannot be encoded ({exc.reason}, "
            f"character {exc.object[exc.start : exc.end]!a} at position {exc.start}).",
            local=True,
        )
    if isinstance(exc, ConnectionError | OSError | TimeoutError) or not isinstance(
        exc, TypeError | ValueError
    ):
        return None
    frames = {frame.name for frame in traceback.extract_tb(exc.__traceback__)}
    if frames & _REQUEST_BUILDERS:
        return RequestInvalidError(
            f"The request could not be sent: the provider's SDK refused it ({_describe(exc)}).", local=True
        )
    return None


def _aiohttp_root(exc: BaseException) -> BaseException | None:
    """The aiohttp exception behind `exc` (through its causes), if there is one."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if type(current).__module__.startswith("aiohttp"):
            return current
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def _map_status(exc: BaseException, status: int) -> ProviderError:
    detail = _error_detail(exc)
    message = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
    lowered = _error_haystack(exc, detail)
    if status < 400:
        # An error event mid-stream (the response itself was 200): overloaded, server error…
        message = f"The provider reported an error mid-stream: {detail}"
        if any(marker in lowered for marker in _CONTEXT_MARKERS):
            return ModelPermanentError(f"Context too long for this model: {detail}")
        if any(marker in lowered for marker in _CONTENT_FILTER_MARKERS):
            return ModelPermanentError(f"Blocked by the provider's content filter: {detail}")
        return TransientError(message)
    if status == 429:
        return TransientError(message, http_status=status, retry_after_s=_retry_after(exc))
    if status >= 500 or status in (408, 409):
        return TransientError(message, http_status=status, retry_after_s=_retry_after(exc))
    if status in (401, 403):
        return ModelPermanentError(message, http_status=status)
    if status == 404:
        return ModelPermanentError(message, http_status=status)
    if any(marker in lowered for marker in _CONTEXT_MARKERS):
        return ModelPermanentError(f"Context too long for this model: {detail}", http_status=status)
    if any(marker in lowered for marker in _CONTENT_FILTER_MARKERS):
        return ModelPermanentError(f"Blocked by the provider's content filter: {detail}", http_status=status)
    if status == 413:
        return ModelPermanentError(f"Request too large for this model: {detail}", http_status=status)
    if status in (400, 422):
        return RequestInvalidError(message, http_status=status)
    if status == 402:
        return ModelPermanentError(message, http_status=status)
    return RequestInvalidError(message, http_status=status)


def _body(exc: BaseException) -> Any:
    body = getattr(exc, "body", None)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]  # Gemini's OpenAI endpoint answers errors as a one-item list
    return body


def _error_detail(exc: BaseException) -> str:
    body = _body(exc)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            message = inner.get("message")
            if isinstance(message, str) and message:
                return message[:500]
        message = body.get("message")
        if isinstance(message, str) and message:
            return message[:500]
    message = getattr(exc, "message", None) or str(exc)
    return str(message)[:500]


def _error_haystack(exc: BaseException, detail: str) -> str:
    body = _body(exc)
    fields: list[Any] = [detail, getattr(exc, "code", None), getattr(exc, "type", None)]
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            fields += [inner.get("code"), inner.get("type"), inner.get("message")]
            fields.append(inner.get("status"))  # Gemini: INVALID_ARGUMENT, RESOURCE_EXHAUSTED…
            inner_error = inner.get("innererror")
            if isinstance(inner_error, dict):
                fields.append(inner_error.get("code"))
        fields += [body.get("code"), body.get("type")]
    return " ".join(str(f) for f in fields if f).lower()


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(float(value) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            return _retry_after_date(value)
    return None


def _retry_after_date(value: str) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if cause is not None and type(exc).__name__ == "APIConnectionError":
        # The SDK's "Connection error." hides what happened (reset, refused, cut mid-body).
        text = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
    return text[:300]


def _seconds(timeout_s: float | None) -> str:
    return f"{timeout_s:g} s" if timeout_s is not None else "configured"
