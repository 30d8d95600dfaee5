"""The attempt policy: the one loop that every path through the engine drives.

A *plan* is the ordered list of steps a request may try (the route's model or a selection,
then its chain). `AttemptLoop` decides, for both the plain path (`execute.plan_run`) and the
streamed one (`streaming.plan_stream`), and so for consensus members, judges and parallel
tasks too:

- which step next: each model once, in plan order;
- skip it and why: the model or its provider disabled, lacking a capability the request
  needs (vision for images, tool_use for tools), its kind unable to honour the request's
  sampling or chat options, its circuit open, its provider's key unset;
- after a failure, from the error class alone: a transient error is retried on the same
  model with exponential backoff and jitter (a provider's retry-after honoured up to a cap,
  moving on at once when it asks for longer; a timeout moves on when another model is left);
  a model-permanent error moves on without retry; a request-invalid error stops the request;
  a failure after the caller already has part of the answer (a stream's first token) ends it;
- the breaker: every failure that blames the provider counts (not a request-invalid one), a success closes it (each
  passing the time its attempt began);
- the one record of every attempt, whatever happens (ok, error, timeout, cancelled).

A driver only executes one attempt (a plain call or a stream through the transport
chokepoint) and reports how it ended: `failed`, `key_missing`, `cancelled` or `succeeded`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from routing.engine.breaker import breaker_attempt_start, breaker_failure, breaker_success
from routing.engine.failures import all_failed, invalid_request, skips_of
from routing.engine.policy import (
    Skip,
    backoff_delay,
    chat_skip,
    choice_dict,
    postprocess,
    should_retry,
    skip_reason,
    status_for,
    timeout_for,
)
from routing.engine.records import cost_for, messages_for, record
from routing.engine.trace import Messages, Step, Trace, conf
from routing.engine.types import AttemptInfo, Result, SkipInfo, Usage
from routing.errors import InvalidRequest, ModelPermanentError, ProviderError, ProviderKeyMissing
from routing.messages import response_view
from routing.processors import ProcessorRejected
from routing.providers.base import Completion, ProviderRequest


@dataclass
class Attempt:
    """One call of one step's model, as the loop hands it to a driver."""

    step: Step
    number: int  # the model's attempt number within the trace (1, 2, … across retries)
    messages: Messages  # as sent: the system prompt in front
    prompt_version_id: int | None
    request: ProviderRequest
    started_at: datetime
    retry: int  # 0 for the model's first attempt in this plan
    more_steps: bool  # another model of the plan is left to try after this one
    skipped: list[SkipInfo] = field(default_factory=list)  # passed over since the previous attempt
    # The breaker's clock when the attempt began: only attempts begun after a circuit opened
    # may close it (or re-open it once half-open).
    begun: float = field(default_factory=breaker_attempt_start)

    @property
    def name(self) -> str:
        return self.step.model.name


Action = Literal["retry", "next", "stop"]


@dataclass
class Outcome:
    """How an attempt that gave no answer ends the loop's turn: `retry` the same model (after
    `info.wait_s`), try the `next` one, or `stop` the request (`error`, `http_status`)."""

    action: Action
    info: AttemptInfo
    error: str
    error_class: str
    http_status: int = 502
    exception: InvalidRequest | None = None  # `stop` on the plain path: what the caller gets


class AttemptLoop:
    def __init__(
        self,
        trace: Trace,
        steps: list[Step],
        messages: Messages,
        *,
        stream: bool = False,
        path_skip: Callable[[Step], Skip | None] | None = None,
    ) -> None:
        self.trace = trace
        # A path's own reason to pass a step over, checked first: chat (the default) passes
        # embedding models over; embeddings (routing.engine.embed) chat models, another
        # dimension, an input the kind refuses.
        self.path_skip = path_skip or chat_skip
        self.steps = steps
        self.messages = messages
        self.stream = stream
        self.attempts: list[AttemptInfo] = []
        self.skipped: dict[str, Skip] = {}
        self.last: ProviderError | None = None
        self.max_retries = int(conf("RETRY_MAX", 2))
        self._unreported: list[SkipInfo] = []  # passed over since the last attempt
        self._tried: set[str] = set()
        self._index = 0
        self._current: Attempt | None = None
        self._wait: float | None = None  # set by a failure the policy retries

    async def next(self) -> Attempt | None:
        """The next attempt to make (after the backoff a retry asks for), or None when the
        plan is exhausted (then `exhausted()` is the error)."""
        current, self._current = self._current, None
        if current is not None and self._wait is not None:
            delay, self._wait = self._wait, None
            await asyncio.sleep(delay)
            return self._start(
                current.step,
                current.messages,
                current.prompt_version_id,
                retry=current.retry + 1,
                more_steps=current.more_steps,
            )
        while self._index < len(self.steps):
            index = self._index
            self._index += 1
            step = self.steps[index]
            name = step.model.name
            if name in self._tried:
                continue
            self._tried.add(name)
            problem = self.path_skip(step) or skip_reason(self.trace, step)
            if problem is not None:
                self.skipped[name] = problem
                self._unreported.extend(skips_of({name: problem}, [step]))
                continue
            more_steps = any(s.model.name not in self._tried for s in self.steps[index + 1 :])
            sent, prompt_version_id = messages_for(self.trace, step.model, self.messages)
            return self._start(step, sent, prompt_version_id, retry=0, more_steps=more_steps)
        return None

    def _start(
        self, step: Step, sent: Messages, prompt_version_id: int | None, *, retry: int, more_steps: bool
    ) -> Attempt:
        trace = self.trace
        number = trace.next_attempt(step.model.name)
        attempt = Attempt(
            step=step,
            number=number,
            messages=sent,
            prompt_version_id=prompt_version_id,
            started_at=trace.record_time(),
            request=ProviderRequest(
                model_id=step.model.model_id,
                messages=sent,
                temperature=trace.temperature,
                max_tokens=trace.max_tokens,
                timeout_s=timeout_for(step),
                sampling=trace.sampling,
                chat=trace.chat,
            ),
            retry=retry,
            more_steps=more_steps,
            skipped=self._unreported,
        )
        self._unreported = []
        self._current = attempt
        return attempt

    def _record(self, attempt: Attempt, **fields: object) -> AttemptInfo:
        return record(
            self.trace,
            attempt.step,
            attempt=attempt.number,
            messages=attempt.messages,
            prompt_version_id=attempt.prompt_version_id,
            started_at=attempt.started_at,
            stream=self.stream,
            attempts=self.attempts,
            **fields,  # type: ignore[arg-type]
        )

    def failed(
        self,
        attempt: Attempt,
        error: ProviderError,
        *,
        committed: bool = False,
        usage: Usage | None = None,
        response_text: str = "",
    ) -> Outcome:
        """Record a failed attempt and decide what follows. `committed`: the caller already
        has part of this answer (a stream's first token), so nothing can take its place."""
        name = attempt.name
        info = self._record(
            attempt,
            status=status_for(error),
            error=error,
            usage=usage,
            cost=cost_for(attempt.step.model, usage) if usage is not None else None,
            response_text=response_text,
        )
        if error.blames_provider:
            breaker_failure(name, started_at=attempt.begun)
        if committed:
            return Outcome(
                "stop",
                info,
                f"{name} failed mid-stream: {error.message}",
                error.error_class,
                http_status=504 if error.timeout else 502,
            )
        if error.error_class == "request_invalid":
            exc = invalid_request(self.trace, name, error)
            return Outcome("stop", info, exc.message, error.error_class, http_status=400, exception=exc)
        self.last = error
        if should_retry(error, attempt.retry, self.max_retries, more_steps=attempt.more_steps):
            delay = backoff_delay(attempt.retry, error.retry_after_s)
            if delay is not None:
                info.wait_s = self._wait = delay
                return Outcome("retry", info, error.message, error.error_class)
        return Outcome("next", info, error.message, error.error_class)

    def key_missing(self, attempt: Attempt, error: ProviderKeyMissing) -> None:
        """The provider's key variable is unset: nothing was sent, so no record; the model
        is skipped (and its attempt number given back)."""
        self.skipped[attempt.name] = ("key", error.message)
        self.trace.counters[attempt.name] -= 1

    def cancelled(
        self,
        attempt: Attempt,
        *,
        message: str,
        latency_ms: float,
        usage: Usage | None = None,
        response_text: str = "",
    ) -> None:
        """The caller went away mid-attempt: record what it cost."""
        self._record(
            attempt,
            status="cancelled",
            usage=usage,
            cost=cost_for(attempt.step.model, usage) if usage is not None else None,
            response_text=response_text,
            error_message=message,
            latency_ms=latency_ms,
        )

    def succeeded(
        self,
        attempt: Attempt,
        completion: Completion,
        *,
        ttft_ms: float | None = None,
        committed: bool = False,
    ) -> Result | Outcome:
        """The provider answered: the Result, or an Outcome when the route's post-processor
        rejects the answer (a model-permanent failure: the next model, unless `committed`)."""
        breaker_success(attempt.name, started_at=attempt.begun)
        trace, model = self.trace, attempt.step.model
        cost = cost_for(model, completion.usage)
        fields: dict[str, object] = {
            "usage": completion.usage,
            "cost": cost,
            "response_text": response_view(completion.text, completion.tool_calls),
            "latency_ms": completion.latency_ms,
            "ttft_ms": ttft_ms,
            "simulated": completion.simulated,
        }
        try:
            text = postprocess(trace, completion.text, tool_calls=completion.tool_calls)
            more = [choice_dict(trace, c) for c in completion.more_choices]
        except ProcessorRejected as exc:
            name = trace.route.postprocessor if trace.route else ""
            message = f"post-processor {name} rejected the answer: {exc}"
            info = self._record(
                attempt, status="error", error_class="model_permanent", error_message=message, **fields
            )
            if committed:
                return Outcome("stop", info, message, "model_permanent")
            self.last = ModelPermanentError(message)
            return Outcome("next", info, message, "model_permanent")
        self._record(attempt, status="ok", **fields)
        return Result(
            text=text,
            model=model.name,
            trace_id=trace.trace_id,
            raw_text=completion.text,
            usage=completion.usage,
            cost_usd=cost,
            latency_ms=completion.latency_ms,
            ttft_ms=ttft_ms,
            finish_reason=completion.finish_reason,
            attempts=self.attempts,
            prompt_version_id=attempt.prompt_version_id,
            simulated=completion.simulated,
            skipped=skips_of(self.skipped, self.steps),
            tool_calls=completion.tool_calls,
            logprobs=completion.logprobs,
            more_choices=more,
        )

    def siblings(self, attempt: Attempt, count: int) -> list[Attempt]:
        """`count` more calls of the same step alongside `attempt` (n answers from a kind that
        gives one per call): each its own attempt number and record."""
        return [
            dataclasses.replace(
                attempt,
                number=self.trace.next_attempt(attempt.name),
                started_at=self.trace.record_time(),
                skipped=[],
            )
            for _ in range(count)
        ]

    def sibling_succeeded(self, attempt: Attempt, completion: Completion) -> Decimal | None:
        """Record a sibling call that answered (priced; its answer joins the primary's Result)."""
        breaker_success(attempt.name, started_at=attempt.begun)
        cost = cost_for(attempt.step.model, completion.usage)
        self._record(
            attempt,
            status="ok",
            usage=completion.usage,
            cost=cost,
            response_text=response_view(completion.text, completion.tool_calls),
            latency_ms=completion.latency_ms,
            simulated=completion.simulated,
        )
        return cost

    def sibling_failed(self, attempt: Attempt, error: ProviderError) -> None:
        """Record a sibling call that failed (the first failure decides what follows)."""
        self._record(attempt, status=status_for(error), error=error)
        if error.blames_provider:
            breaker_failure(attempt.name, started_at=attempt.begun)

    def unreported(self) -> list[SkipInfo]:
        """The skips no attempt has carried yet (the stream's closing event carries them)."""
        out, self._unreported = self._unreported, []
        return out

    def exhausted(self) -> Exception:
        """The error for a plan where nothing answered."""
        return all_failed(self.trace, self.attempts, self.skipped, self.last, self.steps)
