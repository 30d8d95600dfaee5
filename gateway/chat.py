"""The OpenAI-compatible endpoints, independent of the web framework.

`chat_completions()` and `models_list()` take the raw body and headers and return a
`GatewayResponse` (a body, or an async iterator of SSE bytes). Two thin adapters serve them:
Django views (gateway/views.py) and a lean ASGI front (gateway/asgi.py) that answers /v1/
before Django's middleware stack, which is what production uses.

Order of checks: 413 body size, 401 key, 400 body, 403 key not allowed the target,
429 rate limit / budget, then the engine (404 unknown target, 502/503/504 all attempts failed).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

import routing.orchestrator as orchestrator
from gateway.errors import GatewayError, from_orchestrator_error
from gateway.keys import KeyInfo, key_lookup
from gateway.limits import Admission, limits_account, limits_admit
from gateway.services import api_key_touch, api_key_touch_due
from gateway.validation import ChatRequest, chat_request_parse, json_parse
from routing.engine.trace import trace_id_new
from routing.engine.types import Result, StreamEvent
from routing.errors import OrchestratorError
from routing.sampling import NO_SAMPLING

log = logging.getLogger("gateway")

JSON = "application/json"


@dataclass
class GatewayResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: AsyncIterator[bytes] | None = None
    content_type: str = JSON
    # Bookkeeping to run once the response has been sent (whoever sends it must await it):
    # the client does not wait for the spend to reach the counters.
    after: Callable[[], Awaitable[None]] | None = None


async def response_finish(response: GatewayResponse) -> None:
    """Run the response's `after` work (never raises)."""
    if response.after is None:
        return
    try:
        await response.after()
    except Exception:
        log.exception("gateway: bookkeeping after a response failed")


def error_response(exc: GatewayError) -> GatewayResponse:
    return GatewayResponse(exc.status, dict(exc.headers), exc.body())


def max_body_bytes() -> int:
    return int(settings.ORCHESTRATOR.get("GATEWAY_MAX_BODY_BYTES", 2_000_000))


def body_too_large(size: int) -> GatewayError:
    return GatewayError(
        413,
        f"The request body is {size} bytes; the limit is {max_body_bytes()} bytes.",
        code="request_too_large",
    )


# -- Authentication ----------------------------------------------------------------------


async def authenticate(authorization: str | None) -> KeyInfo:
    if not authorization:
        raise GatewayError(
            401,
            "Missing API key: send 'Authorization: Bearer ork-…'. Keys are made in the admin "
            "or with `manage.py create_api_key`.",
            code="missing_api_key",
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise GatewayError(401, "The Authorization header must be 'Bearer <key>'.", code="invalid_api_key")
    info = await key_lookup(token.strip())
    if info is None:
        raise GatewayError(401, "Invalid API key: it is unknown or has been revoked.", code="invalid_api_key")
    if api_key_touch_due(api_key_id=info.id):
        # At most once a minute per key per process: cheap enough to do inline.
        try:
            await sync_to_async(api_key_touch)(api_key_id=info.id)
        except Exception:
            log.exception("gateway: could not update the last use of key %r", info.name)
    return info


def authorize(info: KeyInfo, target: str) -> None:
    if not info.allows(target):
        raise GatewayError(
            403,
            f"This API key may not use {target!r}. Allowed: {', '.join(sorted(info.allowed))}.",
            code="target_not_allowed",
            param="model",
        )


# -- Results in OpenAI's shape -----------------------------------------------------------


def cost_text(cost: Decimal | None) -> str:
    return "unknown" if cost is None else format(cost.normalize(), "f")


def usage_dict(result: Result) -> dict[str, Any]:
    u = result.usage
    usage: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
    }
    if u.cached_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": u.cached_tokens}
    return usage


def result_headers(result: Result) -> dict[str, str]:
    return {
        "x-orchestrator-trace-id": result.trace_id,
        "x-orchestrator-attempts": str(max(1, len(result.attempts))),
        "x-orchestrator-cost-usd": cost_text(result.cost_usd),
        "x-orchestrator-model": result.model,
    }


def completion_dict(result: Result, created: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{result.trace_id}",
        "object": "chat.completion",
        "created": created,
        "model": result.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text, "refusal": None},
                "logprobs": None,
                "finish_reason": result.finish_reason or "stop",
            }
        ],
        "usage": usage_dict(result),
        "system_fingerprint": None,
    }


def _engine_kwargs(req: ChatRequest, info: KeyInfo, trace_id: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"source": "gateway", "api_key_id": info.id, "trace_id": trace_id}
    if req.temperature is not None:
        kwargs["temperature"] = req.temperature
    if req.max_tokens is not None:
        kwargs["max_tokens"] = req.max_tokens
    if req.sampling is not NO_SAMPLING:
        kwargs["sampling"] = req.sampling  # validated already: passed as it is
    return kwargs


async def _complete(req: ChatRequest, kwargs: dict[str, Any]) -> Result:
    if req.target_kind == "route":
        return await orchestrator.aroute(req.target_name, req.last_user_content(), **kwargs)
    if req.target_kind == "chain":
        return await orchestrator.aexecute_with_fallback(req.messages, chain=req.target_name, **kwargs)
    return await orchestrator.acomplete(req.messages, model=req.target_name, **kwargs)


def _stream(req: ChatRequest, kwargs: dict[str, Any]) -> AsyncIterator[StreamEvent]:
    if req.target_kind == "route":
        return orchestrator.astream(task_type=req.target_name, content=req.last_user_content(), **kwargs)
    if req.target_kind == "chain":
        return orchestrator.astream(req.messages, chain=req.target_name, **kwargs)
    return orchestrator.astream(req.messages, model=req.target_name, **kwargs)


async def _account(info: KeyInfo, admission: Admission, result: Result) -> None:
    try:
        await limits_account(
            info=info,
            admission=admission,
            tokens=result.usage.input_tokens + result.usage.output_tokens,
            cost_usd=result.cost_usd,
        )
    except Exception:  # accounting never fails a call that succeeded
        log.exception("gateway: could not account the spend of trace %s", result.trace_id)


# -- POST /v1/chat/completions -----------------------------------------------------------


async def chat_completions(*, body: bytes, authorization: str | None) -> GatewayResponse:
    try:
        if len(body) > max_body_bytes():
            raise body_too_large(len(body))
        info = await authenticate(authorization)
        req = chat_request_parse(json_parse(body))
        authorize(info, req.model)
        if req.target_kind == "route":
            req.last_user_content()  # a 400 before anything is counted
        admission = await limits_admit(info=info)
        trace_id = trace_id_new()  # the engine's: a seeded generator, not an os.urandom call
        kwargs = _engine_kwargs(req, info, trace_id)
        if req.stream:
            return await _chat_stream(req, info, admission, kwargs)
        try:
            result = await _complete(req, kwargs)
        except OrchestratorError as exc:
            raise from_orchestrator_error(exc) from None
        payload = json.dumps(completion_dict(result, int(time.time()))).encode()
        # The spend is added to the key's counters right after the response is sent (the
        # server runs `after` before taking the connection's next request).
        return GatewayResponse(
            200, result_headers(result), payload, after=functools.partial(_account, info, admission, result)
        )
    except GatewayError as exc:
        return error_response(exc)


def _sse(data: dict[str, Any] | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


class ChunkWriter:
    """The SSE bytes of a stream's `chat.completion.chunk`s. Everything but the delta and the
    finish reason is the same in every chunk, so it is encoded once (again only if the model
    changes); the output is byte for byte what `_sse` makes of the whole chunk."""

    __slots__ = ("_head", "chunk_id", "created", "model")

    def __init__(self, chunk_id: str, created: int, model: str) -> None:
        self.chunk_id = chunk_id
        self.created = created
        self.model = ""
        self._head = b""
        self.model_set(model)

    def model_set(self, model: str) -> None:
        if model == self.model and self._head:
            return
        self.model = model
        envelope = {"id": self.chunk_id, "object": "chat.completion.chunk", "created": self.created}
        head = json.dumps({**envelope, "model": model}, separators=(",", ":"))[:-1]
        self._head = f'data: {head},"choices":[{{"index":0,"delta":'.encode()

    def role(self) -> bytes:
        return self._head + b'{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n'

    def content(self, text: str) -> bytes:
        return b"".join((self._head, b'{"content":', json.dumps(text).encode(), _CONTENT_TAIL))

    def finish(self, reason: str) -> bytes:
        return b"".join(
            (self._head, b'{},"logprobs":null,"finish_reason":', json.dumps(reason).encode(), b"}]}\n\n")
        )


_CONTENT_TAIL = b'},"logprobs":null,"finish_reason":null}]}\n\n'


def _stream_error(event: StreamEvent, trace_id: str) -> GatewayError:
    status = event.http_status or (504 if "timeout" in (event.error or "").lower() else 502)
    return GatewayError(
        status,
        event.error or "Every model failed.",
        code="all_attempts_failed",
        headers={"x-orchestrator-trace-id": trace_id},
        extra={"trace_id": trace_id, "error_class": event.error_class},
    )


async def _chat_stream(
    req: ChatRequest, info: KeyInfo, admission: Admission, kwargs: dict[str, Any]
) -> GatewayResponse:
    """Read the engine's stream up to the first text (or the end) before answering, so a
    request that fails before any output gets a real status code, not a broken stream."""
    trace_id = kwargs["trace_id"]
    events = _stream(req, kwargs).__aiter__()
    head: list[StreamEvent] = []
    model = ""
    attempts = 0
    try:
        while True:
            try:
                event = await events.__anext__()
            except StopAsyncIteration:
                event = StreamEvent(kind="error", error="The stream ended without a result.")
            if event.kind == "attempt":
                attempts += 1
                model = event.model or model
                continue
            if event.kind == "attempt_failed":
                continue
            if event.kind == "error":
                async for _ in events:  # the engine's normal end (records written)
                    pass
                raise _stream_error(event, trace_id)
            head.append(event)
            break
    except OrchestratorError as exc:
        await _close(events)
        raise from_orchestrator_error(exc) from None
    except BaseException:
        await _close(events)
        raise

    created = int(time.time())
    first = head[0]
    model = first.model or model or (first.result.model if first.result else "")
    headers = {
        "x-orchestrator-trace-id": trace_id,
        "x-orchestrator-attempts": str(max(1, attempts)),
        "x-orchestrator-model": model,
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
    }

    async def body() -> AsyncIterator[bytes]:
        chunks = ChunkWriter(f"chatcmpl-{trace_id}", created, model)
        # What is ready goes out in one write: the role chunk with the first text, the finish
        # chunk with the usage chunk and [DONE] (the SSE bytes are the same either way).
        out: list[bytes] = [chunks.role()]
        try:
            pending: list[StreamEvent] = list(head)
            while True:
                if pending:
                    event = pending.pop(0)
                else:
                    if out:
                        yield b"".join(out)
                        out.clear()
                    try:
                        event = await events.__anext__()
                    except StopAsyncIteration:
                        break
                    except OrchestratorError as exc:
                        yield _sse(from_orchestrator_error(exc).to_dict())
                        return
                if event.kind == "delta":
                    if event.text:
                        out.append(chunks.content(event.text))
                elif event.kind == "attempt" and event.model:
                    chunks.model_set(event.model)
                elif event.kind == "error":
                    async for _ in events:  # the engine's normal end (records written)
                        pass
                    out.append(_sse(_stream_error(event, trace_id).to_dict()))
                    yield b"".join(out)
                    return
                elif event.kind == "done" and event.result is not None:
                    result = event.result
                    chunks.model_set(result.model or chunks.model)
                    await _account(info, admission, result)
                    # Let the engine end normally (it writes its records then, when inline)
                    # before the client sees the end.
                    async for _ in events:
                        pass
                    out.append(chunks.finish(result.finish_reason or "stop"))
                    if req.include_usage:
                        out.append(
                            _sse(
                                {
                                    "id": chunks.chunk_id,
                                    "object": "chat.completion.chunk",
                                    "created": created,
                                    "model": chunks.model,
                                    "choices": [],
                                    "usage": usage_dict(result),
                                    "orchestrator": {
                                        "trace_id": result.trace_id,
                                        "attempts": max(1, len(result.attempts)),
                                        "cost_usd": cost_text(result.cost_usd),
                                    },
                                }
                            )
                        )
                    out.append(b"data: [DONE]\n\n")
                    yield b"".join(out)
                    return
            if out:
                yield b"".join(out)
        finally:
            # On a client disconnect this runs on cancellation: closing the engine's stream
            # cancels the upstream call and records the attempt as cancelled.
            await _close(events)

    return GatewayResponse(200, headers, stream=body(), content_type="text/event-stream")


async def _close(events: AsyncIterator[StreamEvent]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.exception("gateway: closing an engine stream failed")


def method_not_allowed(allowed: str) -> GatewayResponse:
    exc = GatewayError(405, f"Method not allowed; use {allowed}.", code="method_not_allowed")
    return GatewayResponse(405, {"allow": allowed}, exc.body())


def not_found(path: str) -> GatewayResponse:
    exc = GatewayError(404, f"No such endpoint: {path}", code="unknown_endpoint")
    return error_response(exc)
