"""POST /v1/chat/completions: OpenAI's chat completions as a gateway endpoint (an adapter
over the sequence in gateway/calls.py: parse, call the engine, shape the answer), plain or
streamed as server-sent events.

Order of checks (the sequence's): 413 body size, 401 key, 400 body, 403 key not allowed the
target, 429 rate limit / budget, then the engine (404 unknown target, 502/503/504 all
attempts failed).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from gateway.calls import Admitted, Endpoint, Spend
from gateway.errors import GatewayError, from_orchestrator_error
from gateway.http import GatewayRequest, GatewayResponse, cost_text, json_encode
from gateway.validation import ChatRequest, chat_request_parse, json_parse
from routing.errors import OrchestratorError
from routing.messages import NO_CHAT_OPTIONS
from routing.orchestrator import (
    NO_SAMPLING,
    Result,
    StreamEvent,
    ToolCallDelta,
    acomplete,
    aexecute_with_fallback,
    aroute,
    astream,
)

log = logging.getLogger("gateway")


# -- Results in OpenAI's shape -----------------------------------------------------------


def usage_dict(result: Result) -> dict[str, Any]:
    u = result.usage
    usage: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
    }
    if u.cached_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": u.cached_tokens}
    if u.reasoning_tokens:
        usage["completion_tokens_details"] = {"reasoning_tokens": u.reasoning_tokens}
    return usage


def result_headers(result: Result) -> dict[str, str]:
    return {
        "x-orchestrator-trace-id": result.trace_id,
        "x-orchestrator-attempts": str(max(1, len(result.attempts))),
        "x-orchestrator-cost-usd": cost_text(result.cost_usd),
        "x-orchestrator-model": result.model,
    }


def _choice(
    index: int,
    text: str,
    tool_calls: list[dict[str, Any]] | None,
    logprobs: dict[str, Any] | None,
    finish_reason: str | None,
) -> dict[str, Any]:
    """One choice in OpenAI's shape: `content` null when the model only called tools."""
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
        if not text:
            message["content"] = None
    return {
        "index": index,
        "message": message,
        "logprobs": logprobs,
        "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
    }


def completion_dict(result: Result, created: int) -> dict[str, Any]:
    choices = [_choice(0, result.text, result.tool_calls, result.logprobs, result.finish_reason)]
    for i, more in enumerate(result.more_choices, 1):
        choices.append(
            _choice(
                i,
                more.get("text") or "",
                more.get("tool_calls"),
                more.get("logprobs"),
                more.get("finish_reason"),
            )
        )
    return {
        "id": f"chatcmpl-{result.trace_id}",
        "object": "chat.completion",
        "created": created,
        "model": result.model,
        "choices": choices,
        "usage": usage_dict(result),
        "system_fingerprint": None,
    }


def _engine_kwargs(req: ChatRequest, admitted: Admitted) -> dict[str, Any]:
    kwargs = admitted.engine_kwargs()
    if req.temperature is not None:
        kwargs["temperature"] = req.temperature
    if req.max_tokens is not None:
        kwargs["max_tokens"] = req.max_tokens
    if req.sampling is not NO_SAMPLING:
        kwargs["sampling"] = req.sampling  # validated already: passed as it is
    if req.chat is not NO_CHAT_OPTIONS:
        kwargs["chat"] = req.chat  # likewise
    return kwargs


async def _complete(req: ChatRequest, kwargs: dict[str, Any]) -> Result:
    if req.target_kind == "route":
        return await aroute(req.target_name, req.messages, **kwargs)
    if req.target_kind == "chain":
        return await aexecute_with_fallback(req.messages, chain=req.target_name, **kwargs)
    return await acomplete(req.messages, model=req.target_name, **kwargs)


def _stream(req: ChatRequest, kwargs: dict[str, Any]) -> AsyncIterator[StreamEvent]:
    if req.target_kind == "route":
        return astream(req.messages, task_type=req.target_name, **kwargs)
    if req.target_kind == "chain":
        return astream(req.messages, chain=req.target_name, **kwargs)
    return astream(req.messages, model=req.target_name, **kwargs)


# -- The endpoint ------------------------------------------------------------------------


@dataclass
class StreamHead:
    """A stream read up to its first text or tool call (or its end): what the response starts with."""

    req: ChatRequest
    events: AsyncIterator[StreamEvent]
    head: list[StreamEvent]
    model: str
    attempts: int


class ChatCompletions(Endpoint[ChatRequest, Result | StreamHead]):
    endpoint = "chat.completions"

    def parse(self, request: GatewayRequest) -> ChatRequest:
        req = chat_request_parse(json_parse(request.body))
        if req.target_kind == "route":
            req.last_user_content()  # a 400 before anything is counted
        return req

    def targets(self, parsed: ChatRequest) -> list[str]:
        return [parsed.model]

    async def call(self, parsed: ChatRequest, admitted: Admitted) -> Result | StreamHead:
        kwargs = _engine_kwargs(parsed, admitted)
        if parsed.stream:
            return await _stream_open(parsed, kwargs)
        return await _complete(parsed, kwargs)

    def spent(self, outcome: Result | StreamHead) -> Spend | None:
        # A stream settles its spend itself, once its body is sent (`after=admitted.end`).
        return Spend.of([outcome]) if isinstance(outcome, Result) else None

    def respond(self, outcome: Result | StreamHead, admitted: Admitted) -> GatewayResponse:
        if isinstance(outcome, StreamHead):
            return _stream_response(outcome, admitted)
        payload = json_encode(completion_dict(outcome, int(time.time())))
        return GatewayResponse(200, result_headers(outcome), payload)


CHAT_COMPLETIONS = ChatCompletions()


_string = json.encoder.encode_basestring_ascii  # what json.dumps(a_string) returns, in C


def sse_event(data: dict[str, Any]) -> bytes:
    """One SSE `data:` event of compact JSON (orjson, through `json_encode`)."""
    return b"data: %s\n\n" % json_encode(data)


class ChunkWriter:
    """The SSE bytes of a stream's `chat.completion.chunk`s. Everything but the delta and the
    finish reason is the same in every chunk, so it is encoded once (again only if the model
    changes); the output is the JSON `sse_event` makes of the whole chunk (text with its
    non-ASCII characters escaped, as json does)."""

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
        head = json_encode({**envelope, "model": model})[:-1]
        self._head = b'data: %s,"choices":[{"index":0,"delta":' % head

    def role(self) -> bytes:
        return self._head + b'{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n'

    def content(self, text: str) -> bytes:
        return b"".join((self._head, b'{"content":', _string(text).encode(), _CONTENT_TAIL))

    def tool_call(self, piece: ToolCallDelta) -> bytes:
        """A streamed tool-call piece (a ToolCallDelta) as OpenAI's `delta.tool_calls`: the first
        piece of a call carries its id, type and name, later ones argument fragments."""
        call: dict[str, Any] = {"index": piece.index}
        if piece.id is not None:
            call["id"] = piece.id
            call["type"] = "function"
        function: dict[str, Any] = {} if piece.name is None else {"name": piece.name}
        function["arguments"] = piece.arguments
        call["function"] = function
        return b"".join(
            (
                self._head,
                b'{"tool_calls":[',
                json_encode(call),
                b"]",
                _CONTENT_TAIL,
            )
        )

    def finish(self, reason: str) -> bytes:
        return b"".join(
            (self._head, b'{},"logprobs":null,"finish_reason":', _string(reason).encode(), b"}]}\n\n")
        )


_CONTENT_TAIL = b'},"logprobs":null,"finish_reason":null}]}\n\n'


def stream_error(event: StreamEvent, trace_id: str) -> GatewayError:
    """A stream's `error` event as the error the gateway answers (before any output) or sends
    as a last SSE event (after it); shared by the endpoints that stream through chat."""
    status = event.http_status or (504 if "timeout" in (event.error or "").lower() else 502)
    return GatewayError(
        status,
        event.error or "Every model failed.",
        code="all_attempts_failed",
        headers={"x-orchestrator-trace-id": trace_id},
        extra={"trace_id": trace_id, "error_class": event.error_class},
    )


async def _stream_open(req: ChatRequest, kwargs: dict[str, Any]) -> StreamHead:
    """Read the engine's stream up to the first text or tool call (or the end) before answering, so a
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
                raise stream_error(event, trace_id)
            head.append(event)
            break
    except BaseException:
        await stream_close(events)
        raise
    return StreamHead(req=req, events=events, head=head, model=model, attempts=attempts)


def _stream_response(opened: StreamHead, admitted: Admitted) -> GatewayResponse:
    req, events, head, trace_id = opened.req, opened.events, opened.head, admitted.trace_id
    created = int(time.time())
    first = head[0]
    model = first.model or opened.model or (first.result.model if first.result else "")
    headers = {
        "x-orchestrator-trace-id": trace_id,
        "x-orchestrator-attempts": str(max(1, opened.attempts)),
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
                        yield sse_event(from_orchestrator_error(exc).to_dict())
                        return
                if event.kind == "delta":
                    if event.text:
                        out.append(chunks.content(event.text))
                elif event.kind == "tool_call" and event.tool_call is not None:
                    out.append(chunks.tool_call(event.tool_call))
                elif event.kind == "attempt" and event.model:
                    chunks.model_set(event.model)
                elif event.kind == "error":
                    async for _ in events:  # the engine's normal end (records written)
                        pass
                    out.append(sse_event(stream_error(event, trace_id).to_dict()))
                    yield b"".join(out)
                    return
                elif event.kind == "done" and event.result is not None:
                    result = event.result
                    chunks.model_set(result.model or chunks.model)
                    admitted.spend = Spend.of([result])  # settled once the body is sent
                    # Let the engine end normally (it writes its records then, when inline)
                    # before the client sees the end.
                    async for _ in events:
                        pass
                    out.append(
                        chunks.finish(result.finish_reason or ("tool_calls" if result.tool_calls else "stop"))
                    )
                    if req.include_usage:
                        out.append(
                            sse_event(
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
            await stream_close(events)

    return GatewayResponse(200, headers, stream=body(), content_type="text/event-stream", after=admitted.end)


async def stream_close(events: AsyncIterator[StreamEvent]) -> None:
    """Close an engine stream (cancels the upstream call); logs, never raises."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.exception("gateway: closing an engine stream failed")
