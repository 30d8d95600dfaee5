"""The streamed path: the attempt loop driving one provider stream per attempt.

The policy (skips, retries, backoff, breaker, records) is `routing.engine.attempts`; this
module only runs each stream through the transport chokepoint and turns it into events:

- A failure before the first token: the attempt is recorded, an `attempt_failed` event is
  sent, and the next attempt (a retry or the next model) starts with an `attempt` event.
- A failure after it (text or a tool-call piece sent): the partial call is recorded (tokens so far, status error) and the
  stream ends with an `error` event; the text already sent cannot be taken back.
- The consumer closing the iterator (`aclose()`, a client disconnect cancelling the task):
  the upstream stream is closed (which closes the HTTP response) and the attempt is
  recorded as `cancelled`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from typing import Any

from routing.engine.attempts import AttemptLoop, Outcome
from routing.engine.faults import faulted_stream
from routing.engine.selection import estimate_prompt_tokens
from routing.engine.trace import Messages, Step, Trace
from routing.engine.types import AttemptInfo, StreamEvent, Usage
from routing.errors import OrchestratorError, ProviderError, ProviderKeyMissing
from routing.messages import response_view
from routing.providers.base import Completion, StreamEnd, ToolCallDelta, tool_calls_assemble


async def _aclose(upstream: Any) -> None:
    aclose = getattr(upstream, "aclose", None)
    if aclose is None:
        return
    with contextlib.suppress(Exception):
        await aclose()


def _tokens_so_far(parts: list[str], exc: ProviderError | None = None) -> int:
    counted = exc.output_tokens_so_far if exc is not None else 0
    return max(counted, len(parts))


def _so_far(parts: list[str], pieces: list[ToolCallDelta]) -> str:
    """What a stream that did not finish had sent: its text and its tool calls so far."""
    return response_view("".join(parts), tool_calls_assemble(pieces) if pieces else None)


def _error_event(trace: Trace, name: str, outcome: Outcome) -> StreamEvent:
    return StreamEvent(
        kind="error",
        model=name,
        attempt=outcome.info,
        error=outcome.error,
        error_class=outcome.error_class,
        http_status=outcome.http_status,
        trace_id=trace.trace_id,
    )


async def plan_stream(
    trace: Trace, steps: list[Step], messages: Messages
) -> AsyncGenerator[StreamEvent, None]:
    loop = AttemptLoop(trace, steps, messages, stream=True)
    while (attempt := await loop.next()) is not None:
        model = attempt.step.model
        name = model.name
        yield StreamEvent(
            kind="attempt",
            model=name,
            attempt=AttemptInfo(
                model=name, attempt=attempt.number, status="pending", chain_step=attempt.step.chain_step
            ),
            trace_id=trace.trace_id,
            skipped=attempt.skipped,
        )
        parts: list[str] = []
        pieces: list[ToolCallDelta] = []
        end: StreamEnd | None = None
        t0 = time.perf_counter()
        upstream = faulted_stream(model.provider.spec, attempt.request, model_name=name)
        try:
            async for item in upstream:
                if isinstance(item, str):
                    parts.append(item)
                    yield StreamEvent(kind="delta", text=item, model=name)
                elif isinstance(item, ToolCallDelta):
                    pieces.append(item)
                    yield StreamEvent(kind="tool_call", tool_call=item, model=name)
                else:
                    end = item
        except ProviderKeyMissing as exc:
            loop.key_missing(attempt, exc)
            yield StreamEvent(kind="attempt_failed", model=name, error=exc.message, error_class="key")
            continue
        except ProviderError as exc:
            await _aclose(upstream)
            usage = None
            started = bool(parts or pieces)  # the consumer has part of the answer: no fallover
            if started:
                usage = Usage(
                    input_tokens=estimate_prompt_tokens(attempt.messages),
                    output_tokens=_tokens_so_far(parts, exc) + len(pieces),
                )
            outcome = loop.failed(
                attempt, exc, committed=started, usage=usage, response_text=_so_far(parts, pieces)
            )
            if outcome.action == "stop":
                yield _error_event(trace, name, outcome)
                return
            yield StreamEvent(
                kind="attempt_failed",
                model=name,
                attempt=outcome.info,
                error=exc.message,
                error_class=exc.error_class,
            )
            continue
        except (GeneratorExit, asyncio.CancelledError):
            # The consumer went away: stop the upstream request, keep what it cost.
            loop.cancelled(
                attempt,
                usage=Usage(
                    input_tokens=estimate_prompt_tokens(attempt.messages),
                    output_tokens=len(parts) + len(pieces),
                ),
                response_text=_so_far(parts, pieces),
                message="cancelled: the reader stopped (client disconnect, Stop, or a consensus that needed no more); upstream request closed",
                latency_ms=(time.perf_counter() - t0) * 1000.0,
            )
            await _aclose(upstream)
            raise
        # The upstream finished normally.
        end = end or StreamEnd()
        usage = end.usage
        if not usage.input_tokens:
            usage.input_tokens = estimate_prompt_tokens(attempt.messages)
        completion = Completion(
            text="".join(parts),
            finish_reason=end.finish_reason,
            usage=usage,
            simulated=end.simulated,
            latency_ms=end.latency_ms,
            tool_calls=end.tool_calls or (tool_calls_assemble(pieces) if pieces else []),
        )
        # The consumer has seen this attempt's text: a rejected answer cannot fall over.
        answer = loop.succeeded(attempt, completion, ttft_ms=end.ttft_ms, committed=True)
        if isinstance(answer, Outcome):
            yield _error_event(trace, name, answer)
            return
        yield StreamEvent(kind="done", model=name, result=answer, trace_id=trace.trace_id)
        return
    error = loop.exhausted()
    if not loop.attempts and isinstance(error, OrchestratorError):
        raise error  # nothing was tried: bad config or input, raised like the non-streaming API
    yield StreamEvent(
        kind="error",
        error=str(error),
        error_class=loop.last.error_class if loop.last is not None else "",
        http_status=getattr(error, "http_status", 502),
        trace_id=trace.trace_id,
        skipped=loop.unreported(),
    )
