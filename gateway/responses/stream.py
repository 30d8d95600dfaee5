"""A streamed response: the engine's stream events (text deltas, ToolCallDelta pieces, the
final Result) as the Responses API's typed server-sent events, each with `type` and
`sequence_number` and an `event:` line:

    response.created, response.in_progress
    response.output_item.added (a message) → response.content_part.added →
        response.output_text.delta … → response.output_text.done → response.content_part.done →
        response.output_item.done
    response.output_item.added (a function_call) → response.function_call_arguments.delta … →
        response.function_call_arguments.done → response.output_item.done
    response.completed (the whole response; response.incomplete when the token limit stopped
    the model), or response.failed when the models failed after the stream began.

The stream opens (gateway/chat.py) only once the engine has its first output, so a request
that fails before any gets a real status code. A stream the client cuts is closed (the
upstream call cancelled and recorded as such) and settles the key.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.calls import Admitted, Spend
from gateway.chat import StreamHead, stream_close, stream_error
from gateway.errors import from_orchestrator_error
from gateway.http import GatewayResponse
from gateway.responses.shape import (
    assistant_turn,
    function_call_item,
    item_id,
    message_item,
    response_object,
    status_of,
)
from routing.errors import OrchestratorError
from routing.orchestrator import Result, StreamEvent, ToolCallDelta

# What the endpoint does with the finished response before the client sees it (store it).
Finish = Callable[[dict[str, Any], list[dict[str, Any]]], Awaitable[None]]


@dataclass
class _Call:
    output_index: int
    ident: str
    call_id: str
    name: str
    arguments: str = ""
    done: bool = False


@dataclass
class _Message:
    output_index: int
    ident: str
    text: str = ""
    done: bool = False


@dataclass
class EventWriter:
    """The events of one response, numbered in order; the output items as they grow."""

    response: dict[str, Any]
    sequence: int = 0
    items: list[_Message | _Call] = field(default_factory=list)
    message: _Message | None = None  # the message item text goes to (None: open one)
    calls: dict[int, _Call] = field(default_factory=dict)  # ToolCallDelta.index -> item

    def event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()

    def lifecycle(self, kind: str, **changes: Any) -> bytes:
        self.response.update(changes)
        return self.event(kind, response=self.response)

    def text(self, delta: str) -> list[bytes]:
        out: list[bytes] = []
        if self.message is None:
            self.message = _Message(len(self.items), item_id("msg"))
            self.items.append(self.message)
            m = self.message
            out.append(
                self.event(
                    "response.output_item.added",
                    output_index=m.output_index,
                    item={**message_item(m.ident, "", status="in_progress"), "content": []},
                )
            )
            out.append(
                self.event(
                    "response.content_part.added",
                    item_id=m.ident,
                    output_index=m.output_index,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                )
            )
        if delta:
            self.message.text += delta
            out.append(
                self.event(
                    "response.output_text.delta",
                    item_id=self.message.ident,
                    output_index=self.message.output_index,
                    content_index=0,
                    delta=delta,
                    logprobs=[],
                )
            )
        return out

    def tool_call(self, piece: ToolCallDelta) -> list[bytes]:
        out: list[bytes] = []
        call = self.calls.get(piece.index)
        if call is None:
            call = _Call(len(self.items), item_id("fc"), piece.id or item_id("call"), piece.name or "")
            self.calls[piece.index] = call
            self.items.append(call)
            self.message = None  # text after a call is a message of its own
            out.append(
                self.event(
                    "response.output_item.added",
                    output_index=call.output_index,
                    item=function_call_item(call.ident, call.call_id, call.name, "", status="in_progress"),
                )
            )
        if piece.arguments:
            call.arguments += piece.arguments
            out.append(
                self.event(
                    "response.function_call_arguments.delta",
                    item_id=call.ident,
                    output_index=call.output_index,
                    delta=piece.arguments,
                )
            )
        return out

    def result_fill(self, result: Result) -> list[bytes]:
        """What the stream did not carry but the result has: text from a provider that sent it
        whole, tool calls that were not streamed; an empty message when there is no output."""
        out: list[bytes] = []
        if result.text and not any(isinstance(i, _Message) for i in self.items):
            out += self.text(result.text)
        if not self.calls:
            for index, call in enumerate(result.tool_calls):
                function = call.get("function") or {}
                out += self.tool_call(
                    ToolCallDelta(
                        index=index,
                        id=call.get("id"),
                        name=function.get("name"),
                        arguments=function.get("arguments") or "",
                    )
                )
        if not self.items:
            out += self.text("")
        return out

    def close(self, *, status: str, final_text: str | None = None) -> list[bytes]:
        """The done events of every open item, in output order; the output items."""
        out: list[bytes] = []
        messages = [i for i in self.items if isinstance(i, _Message)]
        if final_text is not None and len(messages) == 1:
            messages[0].text = final_text  # after the route's post-processor
        for item in self.items:
            if item.done:
                continue
            item.done = True
            if isinstance(item, _Message):
                part = {"type": "output_text", "text": item.text, "annotations": [], "logprobs": []}
                common = {"item_id": item.ident, "output_index": item.output_index, "content_index": 0}
                out.append(self.event("response.output_text.done", **common, text=item.text, logprobs=[]))
                out.append(self.event("response.content_part.done", **common, part=part))
                done_item = message_item(item.ident, item.text, status=status)
            else:
                out.append(
                    self.event(
                        "response.function_call_arguments.done",
                        item_id=item.ident,
                        output_index=item.output_index,
                        name=item.name,
                        arguments=item.arguments,
                    )
                )
                done_item = function_call_item(item.ident, item.call_id, item.name, item.arguments)
            out.append(
                self.event("response.output_item.done", output_index=item.output_index, item=done_item)
            )
        return out

    def output(self, status: str) -> list[dict[str, Any]]:
        return [
            message_item(i.ident, i.text, status=status)
            if isinstance(i, _Message)
            else function_call_item(i.ident, i.call_id, i.name, i.arguments)
            for i in self.items
        ]


def stream_response(
    opened: StreamHead,
    admitted: Admitted,
    *,
    response_id: str,
    echo: dict[str, Any],
    previous_response_id: str | None,
    store: bool,
    finish: Finish,
) -> GatewayResponse:
    """The SSE response for an opened engine stream. `finish(response, output)` runs before
    response.completed is sent (storing it), never for a failed stream."""
    events, head, trace_id = opened.events, opened.head, admitted.trace_id
    first = head[0]
    model = first.model or opened.model or (first.result.model if first.result else "")
    headers = {
        "x-orchestrator-trace-id": trace_id,
        "x-orchestrator-attempts": str(max(1, opened.attempts)),
        "x-orchestrator-model": model,
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
    }
    response = response_object(
        response_id=response_id,
        created_at=int(time.time()),
        model=model,
        echo=echo,
        previous_response_id=previous_response_id,
        store=store,
    )

    async def body() -> AsyncIterator[bytes]:
        writer = EventWriter(response)
        out = [writer.lifecycle("response.created"), writer.lifecycle("response.in_progress")]
        try:
            pending: list[StreamEvent] = list(head)
            while True:
                if pending:
                    event = pending.pop(0)
                else:
                    yield b"".join(out)
                    out.clear()
                    try:
                        event = await events.__anext__()
                    except StopAsyncIteration:
                        event = StreamEvent(kind="error", error="The stream ended without a result.")
                    except OrchestratorError as exc:
                        event = StreamEvent(kind="error", error=from_orchestrator_error(exc).message)
                if event.kind == "delta":
                    if event.text:
                        out += writer.text(event.text)
                elif event.kind == "tool_call" and event.tool_call is not None:
                    out += writer.tool_call(event.tool_call)
                elif event.kind == "attempt" and event.model:
                    response["model"] = event.model
                elif event.kind == "error":
                    async for _ in events:  # the engine's normal end (records written)
                        pass
                    failure = stream_error(event, trace_id)
                    out += writer.close(status="incomplete")
                    error = {"code": "server_error", "message": failure.message}
                    out.append(
                        writer.lifecycle(
                            "response.failed",
                            status="failed",
                            error=error,
                            output=writer.output("incomplete"),
                        )
                    )
                    yield b"".join(out)
                    return
                elif event.kind == "done" and event.result is not None:
                    result = event.result
                    admitted.spend = Spend.of([result])  # settled once the body is sent
                    async for _ in events:  # the engine ends normally (records written) first
                        pass
                    status, incomplete = status_of(result)
                    item_status = "incomplete" if incomplete else "completed"
                    out += writer.result_fill(result)
                    out += writer.close(status=item_status, final_text=result.text or None)
                    final = response_object(
                        response_id=response_id,
                        created_at=response["created_at"],
                        model=result.model or response["model"],
                        echo=echo,
                        previous_response_id=previous_response_id,
                        store=store,
                        status=status,
                        output=writer.output(item_status),
                        result=result,
                        incomplete_details=incomplete,
                    )
                    await finish(final, [assistant_turn(final["output"])])
                    kind = "response.incomplete" if incomplete else "response.completed"
                    out.append(writer.event(kind, response=final))
                    yield b"".join(out)
                    return
        finally:
            # On a client disconnect this runs on cancellation: closing the engine's stream
            # cancels the upstream call and records the attempt as cancelled.
            await stream_close(events)

    return GatewayResponse(200, headers, stream=body(), content_type="text/event-stream", after=admitted.end)
