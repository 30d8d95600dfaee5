"""Answers in Anthropic's shape: the `message` object, and a stream as Anthropic's server-sent
events (each with its `event:` line).

The message: `id` "msg_<trace id>", `model` the model that answered (as chat's `model` says),
text and `tool_use` blocks (a tool call's arguments parsed back into its `input` object),
`stop_reason` from the engine's finish reason (stop → end_turn, length → max_tokens,
tool_calls → tool_use, content_filter → refusal; the engine's finish reasons do not say
whether a stop sequence ended the answer, so `stop_sequence` is always null and end_turn
stands for both), `usage` with `input_tokens` the uncached prompt tokens and
`cache_read_input_tokens` the cached ones when the provider said.

The stream: message_start, ping, then per block content_block_start / content_block_delta
(text_delta, or input_json_delta for a tool call's arguments as the engine's ToolCallDelta
events bring them) / content_block_stop, then message_delta (stop_reason and usage) and
message_stop; a failure after the answer has started is an `error` event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from gateway.calls import Admitted, Spend
from gateway.chat import stream_close, stream_error
from gateway.errors import from_orchestrator_error
from gateway.http import GatewayResponse, cost_text
from gateway.messages.errors import anthropic_error_dict
from routing.errors import OrchestratorError
from routing.messages.anthropic import stop_reason_of
from routing.orchestrator import Result, StreamEvent, ToolCallDelta, Usage


def usage_dict(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": max(0, usage.input_tokens - usage.cached_tokens),
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": None,
    }


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        value = None
    # The providers check a call's arguments are a JSON object; anything else is kept visible.
    return value if isinstance(value, dict) else {"arguments": arguments}


def content_blocks(result: Result) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if result.text or not result.tool_calls:
        blocks.append({"type": "text", "text": result.text})
    for call in result.tool_calls:
        function = call["function"]
        blocks.append(
            {
                "type": "tool_use",
                "id": call["id"],
                "name": function["name"],
                "input": _tool_input(function["arguments"]),
            }
        )
    return blocks


def message_dict(result: Result) -> dict[str, Any]:
    return {
        "id": f"msg_{result.trace_id}",
        "type": "message",
        "role": "assistant",
        "model": result.model,
        "content": content_blocks(result),
        "stop_reason": stop_reason_of(result.finish_reason, tool_calls=bool(result.tool_calls)),
        "stop_sequence": None,
        "usage": usage_dict(result.usage),
    }


def result_headers(result: Result) -> dict[str, str]:
    return {
        "x-orchestrator-trace-id": result.trace_id,
        "x-orchestrator-attempts": str(max(1, len(result.attempts))),
        "x-orchestrator-cost-usd": cost_text(result.cost_usd),
        "x-orchestrator-model": result.model,
    }


def message_response(result: Result) -> GatewayResponse:
    return GatewayResponse(200, result_headers(result), json.dumps(message_dict(result)).encode())


# -- The stream --------------------------------------------------------------------------


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class BlockWriter:
    """The content-block events of one answer: a block opens when its kind of output starts
    (text, or a tool call's first piece) and closes when another starts or the answer ends."""

    def __init__(self) -> None:
        self.count = 0  # blocks opened so far
        self.open: int | None = None  # the open block's index
        self.text_open = False
        self.tool_blocks: dict[int, int] = {}  # a tool call's index → its block's index

    def _start(self, block: dict[str, Any], out: list[bytes]) -> int:
        self.close(out)
        index = self.count
        self.count += 1
        self.open = index
        out.append(
            sse(
                "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
            )
        )
        return index

    def close(self, out: list[bytes]) -> None:
        if self.open is not None:
            out.append(sse("content_block_stop", {"type": "content_block_stop", "index": self.open}))
        self.open = None
        self.text_open = False

    def text(self, text: str, out: list[bytes]) -> None:
        if not self.text_open:
            self._start({"type": "text", "text": ""}, out)
            self.text_open = True
        delta = {"type": "text_delta", "text": text}
        out.append(
            sse("content_block_delta", {"type": "content_block_delta", "index": self.open, "delta": delta})
        )

    def tool_call(self, piece: ToolCallDelta, out: list[bytes]) -> None:
        index = self.tool_blocks.get(piece.index)
        if index is None:
            block = {
                "type": "tool_use",
                "id": piece.id or f"call_{piece.index}",
                "name": piece.name or "",
                "input": {},
            }
            index = self.tool_blocks[piece.index] = self._start(block, out)
        if piece.arguments:
            delta = {"type": "input_json_delta", "partial_json": piece.arguments}
            out.append(
                sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            )


def _message_start(trace_id: str, model: str) -> bytes:
    message: dict[str, Any] = {
        "id": f"msg_{trace_id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    return sse("message_start", {"type": "message_start", "message": message}) + sse("ping", {"type": "ping"})


def _message_end(result: Result) -> bytes:
    delta = {
        "type": "message_delta",
        "delta": {
            "stop_reason": stop_reason_of(result.finish_reason, tool_calls=bool(result.tool_calls)),
            "stop_sequence": None,
        },
        "usage": usage_dict(result.usage),
    }
    return sse("message_delta", delta) + sse("message_stop", {"type": "message_stop"})


def stream_response(
    events: AsyncIterator[StreamEvent], head: list[StreamEvent], model: str, attempts: int, admitted: Admitted
) -> GatewayResponse:
    """The SSE response for an engine stream read up to its first output (`head`)."""
    trace_id = admitted.trace_id
    headers = {
        "x-orchestrator-trace-id": trace_id,
        "x-orchestrator-attempts": str(max(1, attempts)),
        "x-orchestrator-model": model,
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
    }

    async def body() -> AsyncIterator[bytes]:
        blocks = BlockWriter()
        out: list[bytes] = [_message_start(trace_id, model)]
        pending = list(head)
        try:
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
                        yield sse("error", anthropic_error_dict(from_orchestrator_error(exc)))
                        return
                if event.kind == "delta":
                    if event.text:
                        blocks.text(event.text, out)
                elif event.kind == "tool_call" and event.tool_call is not None:
                    blocks.tool_call(event.tool_call, out)
                elif event.kind == "error":
                    async for _ in events:  # the engine's normal end (records written)
                        pass
                    out.append(sse("error", anthropic_error_dict(stream_error(event, trace_id))))
                    yield b"".join(out)
                    return
                elif event.kind == "done" and event.result is not None:
                    admitted.spend = Spend.of([event.result])  # settled once the body is sent
                    async for _ in events:  # let the engine end normally (its records) first
                        pass
                    blocks.close(out)
                    out.append(_message_end(event.result))
                    yield b"".join(out)
                    return
            if out:
                yield b"".join(out)
        finally:
            # A client that goes away cancels here: closing the engine's stream cancels the
            # upstream call and records the attempt as cancelled.
            await stream_close(events)

    return GatewayResponse(200, headers, stream=body(), content_type="text/event-stream", after=admitted.end)
