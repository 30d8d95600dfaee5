"""The plain (non-streamed) path: the attempt loop driving one provider call per attempt.

The policy (skips, retries, backoff, breaker, records) is `routing.engine.attempts`; this
module only makes each call through the transport chokepoint and reports how it ended.
"""

from __future__ import annotations

import asyncio
import time

from routing.engine.attempts import AttemptLoop
from routing.engine.faults import faulted_complete
from routing.engine.trace import Messages, Step, Trace
from routing.engine.types import Result
from routing.errors import ProviderError, ProviderKeyMissing


async def plan_run(trace: Trace, steps: list[Step], messages: Messages) -> Result:
    """Try the steps in order until one answers. Raises OrchestratorError subclasses only."""
    loop = AttemptLoop(trace, steps, messages)
    while (attempt := await loop.next()) is not None:
        model = attempt.step.model
        t0 = time.perf_counter()
        try:
            completion = await faulted_complete(model.provider.spec, attempt.request, model_name=model.name)
        except ProviderKeyMissing as exc:
            loop.key_missing(attempt, exc)
            continue
        except ProviderError as exc:
            outcome = loop.failed(attempt, exc, response_text=exc.partial_text)
            if outcome.exception is not None:
                raise outcome.exception from exc
            continue
        except asyncio.CancelledError:
            loop.cancelled(
                attempt,
                message="cancelled before the answer arrived",
                latency_ms=(time.perf_counter() - t0) * 1000.0,
            )
            raise
        answer = loop.succeeded(attempt, completion)
        if isinstance(answer, Result):
            return answer
    raise loop.exhausted()
