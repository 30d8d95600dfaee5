"""The plain (non-streamed) path: the attempt loop driving one provider call per attempt.

The policy (skips, retries, backoff, breaker, records) is `routing.engine.attempts`; this
module only makes each call through the transport chokepoint and reports how it ended.

`n > 1` on a kind without its own `n` (no `NATIVE_N` in its package): the attempt is n
calls of the same step at once, each recorded and priced, merged into one Result (choice 0
and `more_choices`, usage and cost summed). A failure of any of them is the attempt's failure
(the answers that came are recorded, and the loop retries or moves on as for one call).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from decimal import Decimal

from routing.engine.attempts import Attempt, AttemptLoop
from routing.engine.faults import faulted_complete
from routing.engine.trace import Messages, Step, Trace
from routing.engine.types import Result, Usage
from routing.errors import ProviderError, ProviderKeyMissing
from routing.providers.base import Choice, Completion
from routing.providers.registry import native_n_for


async def plan_run(trace: Trace, steps: list[Step], messages: Messages) -> Result:
    """Try the steps in order until one answers. Raises OrchestratorError subclasses only."""
    loop = AttemptLoop(trace, steps, messages)
    n = trace.chat.n
    while (attempt := await loop.next()) is not None:
        if n > 1 and not native_n_for(attempt.step.model.provider.kind):
            answer = await _choices(loop, attempt, n)
        else:
            answer = await _one(loop, attempt)
        if answer is not None:
            return answer
    raise loop.exhausted()


async def _one(loop: AttemptLoop, attempt: Attempt) -> Result | None:
    """One call: the Result, or None when the loop goes on (retry or next model)."""
    model = attempt.step.model
    t0 = time.perf_counter()
    try:
        completion = await faulted_complete(model.provider.spec, attempt.request, model_name=model.name)
    except ProviderKeyMissing as exc:
        loop.key_missing(attempt, exc)
        return None
    except ProviderError as exc:
        outcome = loop.failed(attempt, exc, response_text=exc.partial_text)
        if outcome.exception is not None:
            raise outcome.exception from exc
        return None
    except asyncio.CancelledError:
        loop.cancelled(
            attempt,
            message="cancelled before the answer arrived",
            latency_ms=(time.perf_counter() - t0) * 1000.0,
        )
        raise
    answer = loop.succeeded(attempt, completion)
    return answer if isinstance(answer, Result) else None


async def _choices(loop: AttemptLoop, attempt: Attempt, n: int) -> Result | None:
    """n calls of one step at once, merged into one Result; None when the loop goes on."""
    model = attempt.step.model
    calls = [attempt, *loop.siblings(attempt, n - 1)]
    single = dataclasses.replace(attempt.request, chat=dataclasses.replace(loop.trace.chat, n=1))
    for call in calls:
        call.request = single
    t0 = time.perf_counter()
    try:
        outcomes = await asyncio.gather(
            *(faulted_complete(model.provider.spec, single, model_name=model.name) for _ in calls),
            return_exceptions=True,
        )
    except asyncio.CancelledError:
        for call in calls:
            loop.cancelled(
                call,
                message="cancelled before the answer arrived",
                latency_ms=(time.perf_counter() - t0) * 1000.0,
            )
        raise
    missing = next((o for o in outcomes if isinstance(o, ProviderKeyMissing)), None)
    if missing is not None:
        loop.trace.counters[model.name] -= len(calls) - 1  # nothing was sent: no attempts
        loop.key_missing(attempt, missing)
        return None
    failures: list[tuple[Attempt, ProviderError]] = []
    answers: list[Completion] = []
    costs: list[Decimal | None] = []
    for call, outcome in zip(calls, outcomes, strict=True):
        if isinstance(outcome, ProviderError):
            failures.append((call, outcome))
        elif isinstance(outcome, BaseException):
            raise outcome
        elif call is not attempt:
            costs.append(loop.sibling_succeeded(call, outcome))
            answers.append(outcome)
    if failures:
        for call, error in failures[1:]:
            loop.sibling_failed(call, error)
        first_call, first_error = failures[0]
        if first_call is not attempt and not isinstance(outcomes[0], BaseException):
            costs.append(loop.sibling_succeeded(attempt, outcomes[0]))
        decided = loop.failed(first_call, first_error, response_text=first_error.partial_text)
        if decided.exception is not None:
            raise decided.exception from first_error
        return None
    primary = outcomes[0]
    assert isinstance(primary, Completion)
    primary.more_choices = [
        Choice(text=c.text, finish_reason=c.finish_reason, tool_calls=c.tool_calls, logprobs=c.logprobs)
        for c in answers
    ]
    result = loop.succeeded(attempt, primary)
    if not isinstance(result, Result):
        return None
    every = [primary, *answers]
    result.usage = Usage(
        input_tokens=sum(c.usage.input_tokens for c in every),
        output_tokens=sum(c.usage.output_tokens for c in every),
        cached_tokens=sum(c.usage.cached_tokens for c in every),
        reasoning_tokens=sum(c.usage.reasoning_tokens for c in every),
    )
    result.latency_ms = max(c.latency_ms for c in every)
    costs.append(result.cost_usd)
    result.cost_usd = (
        None if any(c is None for c in costs) else sum((c for c in costs if c is not None), Decimal(0))
    )
    return result
