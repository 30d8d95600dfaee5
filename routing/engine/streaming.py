"""Streaming a plan: text deltas as they come, transparent fallback before the first token.

- A failure before the first token: the attempt is recorded, an `attempt_failed` event is
  sent, and the next attempt (a retry or the next model) starts with an `attempt` event.
- A failure after it: the partial call is recorded (tokens so far, status error) and the
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

from routing.engine.breaker import breaker_attempt_start, breaker_failure, breaker_is_open, breaker_success
from routing.engine.execute import (
    Messages,
    Step,
    Trace,
    all_failed,
    backoff_delay,
    conf,
    cost_for,
    messages_for,
    postprocess,
    record,
    result_from,
    sampling_skip,
    should_retry,
    skips_of,
    status_for,
    timeout_for,
)
from routing.engine.selection import estimate_prompt_tokens, model_unusable
from routing.engine.types import AttemptInfo, SkipInfo, StreamEvent, Usage
from routing.errors import OrchestratorError, ProviderError, ProviderKeyMissing
from routing.processors import ProcessorRejected
from routing.providers.base import Completion, ProviderRequest, StreamEnd
from routing.providers.transport import transport_stream


async def _aclose(upstream: Any) -> None:
    aclose = getattr(upstream, "aclose", None)
    if aclose is None:
        return
    with contextlib.suppress(Exception):
        await aclose()


def _tokens_so_far(parts: list[str], exc: ProviderError | None = None) -> int:
    counted = exc.output_tokens_so_far if exc is not None else 0
    return max(counted, len(parts))


async def plan_stream(
    trace: Trace, steps: list[Step], messages: Messages
) -> AsyncGenerator[StreamEvent, None]:
    attempts: list[AttemptInfo] = []
    skipped: dict[str, tuple[str, str]] = {}
    unreported: list[SkipInfo] = []  # passed over since the last event that could say so
    tried: set[str] = set()
    last: ProviderError | None = None
    max_retries = int(conf("RETRY_MAX", 2))
    for index, step in enumerate(steps):
        model = step.model
        name = model.name
        if name in tried:
            continue
        tried.add(name)
        more_steps = any(s.model.name not in tried for s in steps[index + 1 :])
        problem = model_unusable(model) or sampling_skip(trace, model)
        if problem is None and breaker_is_open(name):
            problem = ("circuit", "circuit open")
        if problem is not None:
            skipped[name] = problem
            unreported.extend(skips_of({name: problem}, [step]))
            continue
        sent, prompt_version_id = messages_for(trace, model, messages)
        retry = 0
        while True:
            attempt = trace.next_attempt(name)
            started_at = trace.record_time()
            yield StreamEvent(
                kind="attempt",
                model=name,
                attempt=AttemptInfo(
                    model=name, attempt=attempt, status="pending", chain_step=step.chain_step
                ),
                trace_id=trace.trace_id,
                skipped=unreported,
            )
            unreported = []
            request = ProviderRequest(
                model_id=model.model_id,
                messages=sent,
                temperature=trace.temperature,
                max_tokens=trace.max_tokens,
                timeout_s=timeout_for(step),
                sampling=trace.sampling,
            )
            common: dict[str, Any] = {
                "attempt": attempt,
                "messages": sent,
                "prompt_version_id": prompt_version_id,
                "started_at": started_at,
                "stream": True,
                "attempts": attempts,
            }
            parts: list[str] = []
            end: StreamEnd | None = None
            t0 = time.perf_counter()
            begun = breaker_attempt_start()
            upstream = transport_stream(model.provider.spec, request, model_name=name)
            try:
                async for item in upstream:
                    if isinstance(item, str):
                        parts.append(item)
                        yield StreamEvent(kind="delta", text=item, model=name)
                    else:
                        end = item
            except ProviderKeyMissing as exc:
                skipped[name] = ("key", exc.message)
                trace.counters[name] -= 1
                yield StreamEvent(kind="attempt_failed", model=name, error=exc.message, error_class="key")
                break
            except ProviderError as exc:
                await _aclose(upstream)
                if exc.blames_provider:
                    breaker_failure(name, started_at=begun)
                if parts:
                    usage = Usage(
                        input_tokens=estimate_prompt_tokens(sent),
                        output_tokens=_tokens_so_far(parts, exc),
                    )
                    info = record(
                        trace,
                        step,
                        status=status_for(exc),
                        usage=usage,
                        cost=cost_for(model, usage),
                        response_text="".join(parts),
                        error=exc,
                        **common,
                    )
                    yield StreamEvent(
                        kind="error",
                        model=name,
                        attempt=info,
                        error=f"{name} failed mid-stream: {exc.message}",
                        error_class=exc.error_class,
                        http_status=504 if exc.timeout else 502,
                        trace_id=trace.trace_id,
                    )
                    return
                info = record(trace, step, status=status_for(exc), error=exc, **common)
                if exc.error_class == "request_invalid":
                    yield StreamEvent(
                        kind="error",
                        model=name,
                        attempt=info,
                        error=f"{name} rejected the request as invalid: {exc.message}",
                        error_class=exc.error_class,
                        http_status=400,
                        trace_id=trace.trace_id,
                    )
                    return
                last = exc
                delay = None
                if should_retry(exc, retry, max_retries, more_steps=more_steps):
                    delay = backoff_delay(retry, exc.retry_after_s)
                    info.wait_s = delay
                yield StreamEvent(
                    kind="attempt_failed",
                    model=name,
                    attempt=info,
                    error=exc.message,
                    error_class=exc.error_class,
                )
                if delay is not None:
                    retry += 1
                    await asyncio.sleep(delay)
                    continue
                break
            except (GeneratorExit, asyncio.CancelledError):
                # The consumer went away: stop the upstream request, keep what it cost.
                usage = Usage(input_tokens=estimate_prompt_tokens(sent), output_tokens=len(parts))
                record(
                    trace,
                    step,
                    status="cancelled",
                    usage=usage,
                    cost=cost_for(model, usage),
                    response_text="".join(parts),
                    error_message="cancelled: the reader stopped (client disconnect, Stop, or a consensus that needed no more); upstream request closed",
                    latency_ms=(time.perf_counter() - t0) * 1000.0,
                    **common,
                )
                await _aclose(upstream)
                raise
            # The upstream finished normally.
            breaker_success(name, started_at=begun)
            end = end or StreamEnd()
            raw = "".join(parts)
            usage = end.usage
            if not usage.input_tokens:
                usage.input_tokens = estimate_prompt_tokens(sent)
            cost = cost_for(model, usage)
            completion = Completion(
                text=raw,
                finish_reason=end.finish_reason,
                usage=usage,
                simulated=end.simulated,
                latency_ms=end.latency_ms,
            )
            try:
                text = postprocess(trace, raw)
            except ProcessorRejected as exc:
                message = f"post-processor rejected the answer: {exc}"
                info = record(
                    trace,
                    step,
                    status="error",
                    usage=usage,
                    cost=cost,
                    response_text=raw,
                    error_class="model_permanent",
                    error_message=message,
                    latency_ms=end.latency_ms,
                    ttft_ms=end.ttft_ms,
                    simulated=end.simulated,
                    **common,
                )
                yield StreamEvent(
                    kind="error",
                    model=name,
                    attempt=info,
                    error=message,
                    error_class="model_permanent",
                    http_status=502,
                    trace_id=trace.trace_id,
                )
                return
            record(
                trace,
                step,
                status="ok",
                usage=usage,
                cost=cost,
                response_text=raw,
                latency_ms=end.latency_ms,
                ttft_ms=end.ttft_ms,
                simulated=end.simulated,
                **common,
            )
            result = result_from(
                trace, step, completion, text, cost, attempts, prompt_version_id, ttft_ms=end.ttft_ms
            )
            result.skipped = skips_of(skipped, steps)
            yield StreamEvent(kind="done", model=name, result=result, trace_id=trace.trace_id)
            return
    error = all_failed(trace, attempts, skipped, last, steps)
    if not attempts and isinstance(error, OrchestratorError):
        raise error  # nothing was tried: bad config or input, raised like the non-streaming API
    yield StreamEvent(
        kind="error",
        error=str(error),
        error_class=last.error_class if last is not None else "",
        http_status=getattr(error, "http_status", 502),
        trace_id=trace.trace_id,
        skipped=unreported,
    )
