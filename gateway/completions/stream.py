"""The streamed legacy completion: `text_completion` chunks over chat's stream, then usage and [DONE]."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.calls import Admitted, Spend
from gateway.chat import StreamHead, sse_event, stream_close, stream_error
from gateway.completions.parse import CompletionsRequest
from gateway.completions.shape import finish_legacy, usage_legacy
from gateway.errors import from_orchestrator_error
from gateway.http import GatewayResponse, cost_text
from routing.errors import OrchestratorError
from routing.orchestrator import StreamEvent


@dataclass
class StreamOpened:
    req: CompletionsRequest
    head: StreamHead


def stream_response(opened: StreamOpened, admitted: Admitted) -> GatewayResponse:
    req, stream, trace_id = opened.req, opened.head, admitted.trace_id
    created = int(time.time())
    first = stream.head[0]
    model = first.model or stream.model or (first.result.model if first.result else "")
    headers = {
        "x-orchestrator-trace-id": trace_id,
        "x-orchestrator-attempts": str(max(1, stream.attempts)),
        "x-orchestrator-model": model,
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
    }

    def chunk(text: str, finish_reason: str | None = None) -> bytes:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}
        return sse_event(
            {
                "id": f"cmpl-{trace_id}",
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [choice],
            }
        )

    async def body() -> AsyncIterator[bytes]:
        nonlocal model
        events = stream.events
        out: list[bytes] = [chunk(req.prompts[0])] if req.echo else []
        pending: list[StreamEvent] = list(stream.head)
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
                        yield sse_event(from_orchestrator_error(exc).to_dict())
                        return
                if event.kind == "delta" and event.text:
                    out.append(chunk(event.text))
                elif event.kind == "attempt" and event.model:
                    model = event.model
                elif event.kind == "error":
                    async for _ in events:  # the engine's normal end (records written)
                        pass
                    out.append(sse_event(stream_error(event, trace_id).to_dict()))
                    yield b"".join(out)
                    return
                elif event.kind == "done" and event.result is not None:
                    result = event.result
                    model = result.model or model
                    admitted.spend = Spend.of([result])  # settled once the body is sent
                    async for _ in events:  # the engine ends normally (its records written)
                        pass
                    out.append(chunk("", finish_legacy(result.finish_reason)))
                    if req.chat.include_usage:
                        out.append(
                            sse_event(
                                {
                                    "id": f"cmpl-{trace_id}",
                                    "object": "text_completion",
                                    "created": created,
                                    "model": model,
                                    "choices": [],
                                    "usage": usage_legacy([result]),
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
            # A client that goes away cancels the upstream call; the attempt is recorded cancelled.
            await stream_close(events)

    return GatewayResponse(200, headers, stream=body(), content_type="text/event-stream", after=admitted.end)
