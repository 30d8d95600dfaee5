"""Running a plan: attempts at models in order, with retries, breaker and one record per attempt.

A *plan* is the ordered list of steps a request may try (the route's model or a selection,
then its chain). For each step: skip it if the model is unusable or its circuit is open;
otherwise call it through the transport chokepoint, retrying transient errors with
exponential backoff and jitter (honouring a provider's retry-after up to a cap, moving on
at once when it asks for longer); a model-permanent error moves on without retry; a
request-invalid error stops the whole request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from metrics.services import call_record_enqueue, unknown_price_warn
from routing.engine.breaker import breaker_attempt_start, breaker_failure, breaker_is_open, breaker_success
from routing.engine.config import ModelSnap, RouteSnap
from routing.engine.selection import key_missing_error, model_unusable, sampling_refused
from routing.engine.types import AttemptInfo, Result, SkipInfo, Usage
from routing.errors import (
    AllAttemptsFailed,
    InvalidRequest,
    ModelPermanentError,
    NoCandidate,
    ProviderError,
    ProviderKeyMissing,
)
from routing.pricing import call_cost
from routing.processors import ProcessorRejected, processor_get
from routing.providers.base import Completion, ProviderRequest
from routing.providers.transport import transport_complete
from routing.sampling import NO_SAMPLING, SamplingOptions

logger = logging.getLogger(__name__)

Messages = list[dict[str, Any]]


# Trace ids are uuid4 hex drawn from a generator seeded once from the OS (and again in a
# forked child): os.urandom per call costs more than the rest of the engine's bookkeeping.
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


def trace_id_new() -> str:
    return uuid.UUID(int=_ids.getrandbits(128), version=4).hex


def conf(name: str, default: Any) -> Any:
    return settings.ORCHESTRATOR.get(name, default)


@dataclass
class Trace:
    """What every attempt of one request shares."""

    trace_id: str = field(default_factory=trace_id_new)
    source: str = "api"
    api_key_id: int | None = None
    role: str = ""  # the caller's label; empty: primary/fallback/consensus/judge by position
    route: RouteSnap | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    sampling: SamplingOptions = NO_SAMPLING  # top_p, stop, seed, …: the same for every attempt
    system: str | None = None  # a system prompt override (playground)
    created_at: datetime | None = None  # backdate records (simulated traffic)
    processor_options: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    counters: dict[str, int] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # model → the sampling param it refused

    def next_attempt(self, model: str) -> int:
        n = self.counters.get(model, 0) + 1
        self.counters[model] = n
        return n

    def record_time(self) -> datetime:
        if self.created_at is not None:
            return self.created_at + timedelta(seconds=time.monotonic() - self.started)
        return timezone.now()


@dataclass
class Step:
    model: ModelSnap
    role: str = "primary"
    chain_name: str = ""
    chain_step: int | None = None
    timeout_s: float | None = None


def messages_for(trace: Trace, model: ModelSnap, messages: Messages) -> tuple[Messages, int | None]:
    """The messages sent to `model`: the system prompt override, or the route's (per-model
    variant first), ahead of the caller's messages. Returns the prompt version used."""
    if trace.system is not None:
        rest = [m for m in messages if m.get("role") != "system"]
        return ([{"role": "system", "content": trace.system}, *rest] if trace.system else rest), None
    if trace.route is not None:
        prompt = trace.route.prompt_for(model.name)
        if prompt is not None:
            return [{"role": "system", "content": prompt.system_prompt}, *messages], prompt.id
    return messages, None


def request_text(messages: Messages) -> str:
    if int(conf("RECORD_TEXT_LIMIT", 20_000)) <= 0:
        return ""
    parts = []
    for m in messages:
        content = m.get("content")
        if not isinstance(content, str):
            content = " ".join(
                str(p.get("text", "")) for p in content or [] if isinstance(p, dict) and p.get("text")
            )
        parts.append(f"{m.get('role', 'user')}: {content}")
    return "\n\n".join(parts)


def cost_for(model: ModelSnap, usage: Usage) -> Decimal | None:
    if not model.price_known:
        unknown_price_warn(model.name)
        return None
    return call_cost(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        input_price_per_1k=model.input_price_per_1k,
        output_price_per_1k=model.output_price_per_1k,
        cached_tokens=usage.cached_tokens,
        cached_input_price_per_1k=model.cached_input_price_per_1k,
    )


def record(
    trace: Trace,
    step: Step,
    *,
    attempt: int,
    status: str,
    messages: Messages,
    prompt_version_id: int | None,
    started_at: datetime,
    usage: Usage | None = None,
    cost: Decimal | None = None,
    response_text: str = "",
    error: ProviderError | None = None,
    error_class: str = "",
    error_message: str = "",
    latency_ms: float | None = None,
    ttft_ms: float | None = None,
    stream: bool = False,
    simulated: bool | None = None,
    attempts: list[AttemptInfo] | None = None,
) -> AttemptInfo:
    """Queue the one CallRecord of this attempt and return its AttemptInfo. Never raises."""
    model = step.model
    usage = usage or Usage()
    if error is not None:
        error_class = error_class or error.error_class
        error_message = error_message or error.message
        if latency_ms is None:
            latency_ms = error.latency_ms
    info = AttemptInfo(
        model=model.name,
        attempt=attempt,
        status=status,  # type: ignore[arg-type]
        error_class=error_class,
        error=error_message,
        http_status=error.http_status if error is not None else None,
        latency_ms=latency_ms,
        chain_step=step.chain_step,
    )
    if attempts is not None:
        attempts.append(info)
    try:
        route = trace.route
        call_record_enqueue(
            trace_id=trace.trace_id,
            model_name=model.name,
            status=status,
            attempt=attempt,
            source=trace.source,
            # The caller's label wins, except for a judge, which always says so.
            role=step.role if step.role == "judge" else (trace.role or step.role),
            route_id=route.id if route else None,
            task_type=route.task_type if route else "",
            chain_name=step.chain_name,
            chain_step=step.chain_step,
            prompt_version_id=prompt_version_id,
            model_id=model.id,
            provider_name=model.provider.name,
            provider_kind=model.provider.kind,
            provider_model_id=model.model_id,
            api_key_id=trace.api_key_id,
            error_class=error_class,
            http_status=info.http_status,
            error_message=error_message,
            latency_ms=latency_ms,
            ttft_ms=ttft_ms,
            stream=stream,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            input_price_per_1k=model.input_price_per_1k,
            output_price_per_1k=model.output_price_per_1k,
            price_source=model.price_source,
            cost_usd=cost,
            request_text=request_text(messages),
            response_text=response_text,
            simulated=model.provider.kind == "simulated" if simulated is None else simulated,
            created_at=started_at,
            on_written=lambda pk: setattr(info, "record_id", pk),
        )
    except Exception:
        logger.exception("recording an attempt failed (the call itself is unaffected)")
    return info


def sampling_skip(trace: Trace, model: ModelSnap) -> tuple[str, str] | None:
    """("unsupported", reason) when the model's kind cannot honour the trace's sampling options."""
    refused = sampling_refused(model, trace.sampling)
    if refused is None:
        return None
    trace.refused[model.name] = refused[0]
    return "unsupported", refused[1]


def should_retry(error: ProviderError, retry: int, max_retries: int, *, more_steps: bool) -> bool:
    """Transient errors are retried on the same model, except a timeout when another model
    is left to try: the step's whole time budget is spent, so failing over is faster."""
    if error.error_class != "transient" or retry >= max_retries:
        return False
    return not (error.timeout and more_steps)


def status_for(error: ProviderError) -> str:
    return "timeout" if error.timeout else "error"


def backoff_delay(retry: int, retry_after_s: float | None) -> float | None:
    """Seconds to wait before retry number `retry` (0-based); None: do not wait, move on."""
    if retry_after_s is not None:
        if retry_after_s > float(conf("RETRY_AFTER_CAP_S", 10.0)):
            return None
        return max(retry_after_s, 0.0)
    base = float(conf("RETRY_BASE_S", 0.25)) * (2**retry)
    return min(base * random.uniform(0.5, 1.5), float(conf("RETRY_MAX_DELAY_S", 4.0)))


def postprocess(trace: Trace, text: str) -> str:
    route = trace.route
    if route is None or not route.postprocessor:
        return text
    return processor_get(route.postprocessor)(text, **trace.processor_options)


def timeout_for(step: Step) -> float:
    return float(step.timeout_s or conf("DEFAULT_TIMEOUT_S", 60))


def result_from(
    trace: Trace,
    step: Step,
    completion: Completion,
    text: str,
    cost: Decimal | None,
    attempts: list[AttemptInfo],
    prompt_version_id: int | None,
    ttft_ms: float | None = None,
) -> Result:
    return Result(
        text=text,
        model=step.model.name,
        trace_id=trace.trace_id,
        raw_text=completion.text,
        usage=completion.usage,
        cost_usd=cost,
        latency_ms=completion.latency_ms,
        ttft_ms=ttft_ms,
        finish_reason=completion.finish_reason,
        attempts=attempts,
        prompt_version_id=prompt_version_id,
        simulated=completion.simulated,
    )


async def attempt_complete(
    trace: Trace,
    step: Step,
    messages: Messages,
    prompt_version_id: int | None,
    attempts: list[AttemptInfo],
) -> Result:
    """One non-streamed attempt, recorded whatever happens (ok, error, timeout, cancelled)."""
    model = step.model
    attempt = trace.next_attempt(model.name)
    started_at = trace.record_time()
    request = ProviderRequest(
        model_id=model.model_id,
        messages=messages,
        temperature=trace.temperature,
        max_tokens=trace.max_tokens,
        timeout_s=timeout_for(step),
        sampling=trace.sampling,
    )
    t0 = time.perf_counter()
    begun = breaker_attempt_start()
    try:
        completion = await transport_complete(model.provider.spec, request, model_name=model.name)
    except ProviderError as exc:
        record(
            trace,
            step,
            attempt=attempt,
            status=status_for(exc),
            messages=messages,
            prompt_version_id=prompt_version_id,
            started_at=started_at,
            error=exc,
            response_text=exc.partial_text,
            attempts=attempts,
        )
        if exc.blames_provider:
            breaker_failure(model.name, started_at=begun)
        raise
    except asyncio.CancelledError:
        record(
            trace,
            step,
            attempt=attempt,
            status="cancelled",
            messages=messages,
            prompt_version_id=prompt_version_id,
            started_at=started_at,
            error_message="cancelled before the answer arrived",
            latency_ms=(time.perf_counter() - t0) * 1000.0,
            attempts=attempts,
        )
        raise
    breaker_success(model.name, started_at=begun)
    cost = cost_for(model, completion.usage)
    try:
        text = postprocess(trace, completion.text)
    except ProcessorRejected as exc:
        message = (
            f"post-processor {trace.route.postprocessor if trace.route else ''} rejected the answer: {exc}"
        )
        record(
            trace,
            step,
            attempt=attempt,
            status="error",
            messages=messages,
            prompt_version_id=prompt_version_id,
            started_at=started_at,
            usage=completion.usage,
            cost=cost,
            response_text=completion.text,
            error_class="model_permanent",
            error_message=message,
            latency_ms=completion.latency_ms,
            simulated=completion.simulated,
            attempts=attempts,
        )
        raise ModelPermanentError(message) from exc
    record(
        trace,
        step,
        attempt=attempt,
        status="ok",
        messages=messages,
        prompt_version_id=prompt_version_id,
        started_at=started_at,
        usage=completion.usage,
        cost=cost,
        response_text=completion.text,
        latency_ms=completion.latency_ms,
        simulated=completion.simulated,
        attempts=attempts,
    )
    return result_from(trace, step, completion, text, cost, attempts, prompt_version_id)


def invalid_request(trace: Trace, model: str, exc: ProviderError) -> InvalidRequest:
    error = InvalidRequest(f"{model} rejected the request as invalid: {exc.message}")
    error.trace_id = trace.trace_id  # type: ignore[attr-defined]
    return error


def skips_of(skipped: dict[str, tuple[str, str]], steps: list[Step]) -> list[SkipInfo]:
    """The models a plan passed over, (category, reason) by name, as reported to callers."""
    chain_steps = {s.model.name: s.chain_step for s in steps}
    return [
        SkipInfo(model=name, category=category, reason=reason, chain_step=chain_steps.get(name))
        for name, (category, reason) in skipped.items()
    ]


def unsupported_error(trace: Trace, skipped: dict[str, tuple[str, str]]) -> InvalidRequest:
    """Every model of the plan refused the request's sampling options: the caller's to fix."""
    reasons = "; ".join(why for _, why in skipped.values())
    return InvalidRequest(
        f"No model of the plan can honour the request's parameters ({reasons}).",
        param=next(iter(trace.refused.values()), None),
        code="unsupported_parameter",
    )


def all_failed(
    trace: Trace,
    attempts: list[AttemptInfo],
    skipped: dict[str, tuple[str, str]],
    last: ProviderError | None,
    steps: list[Step],
) -> Exception:
    """The error for a plan where nothing answered."""
    if not attempts:
        categories = {cat for cat, _ in skipped.values()}
        if categories == {"circuit"}:
            return AllAttemptsFailed(
                f"Every candidate's circuit is open: {', '.join(skipped)}.",
                http_status=503,
                trace_id=trace.trace_id,
            )
        if categories == {"key"}:
            models = {s.model.name: s.model for s in steps}
            return key_missing_error(models[n] for n in skipped)
        if categories == {"unsupported"}:
            return unsupported_error(trace, skipped)
        detail = "; ".join(f"{name}: {why}" for name, (_, why) in skipped.items())
        return NoCandidate(
            f"No model could be tried ({detail}).", excluded={n: w for n, (_, w) in skipped.items()}
        )
    tried = ", ".join(dict.fromkeys(a.model for a in attempts))
    last_text = f" Last error: {last.message}" if last is not None else ""
    skipped_text = (
        " Skipped: " + "; ".join(f"{name} ({why})" for name, (_, why) in skipped.items()) + "."
        if skipped
        else ""
    )
    status = 504 if last is not None and last.timeout else 502
    return AllAttemptsFailed(
        f"All {len(attempts)} attempts failed ({tried}).{last_text}{skipped_text}",
        attempts=attempts,
        http_status=status,
        trace_id=trace.trace_id,
    )


async def plan_run(trace: Trace, steps: list[Step], messages: Messages) -> Result:
    """Try the steps in order until one answers. Raises OrchestratorError subclasses only."""
    attempts: list[AttemptInfo] = []
    skipped: dict[str, tuple[str, str]] = {}
    tried: set[str] = set()
    last: ProviderError | None = None
    max_retries = int(conf("RETRY_MAX", 2))
    for index, step in enumerate(steps):
        name = step.model.name
        if name in tried:
            continue
        tried.add(name)
        more_steps = any(s.model.name not in tried for s in steps[index + 1 :])
        problem = model_unusable(step.model) or sampling_skip(trace, step.model)
        if problem is not None:
            skipped[name] = problem
            continue
        if breaker_is_open(name):
            skipped[name] = ("circuit", "circuit open")
            continue
        sent, prompt_version_id = messages_for(trace, step.model, messages)
        retry = 0
        while True:
            try:
                result = await attempt_complete(trace, step, sent, prompt_version_id, attempts)
                result.skipped = skips_of(skipped, steps)
                return result
            except ProviderKeyMissing as exc:
                skipped[name] = ("key", exc.message)
                break
            except ProviderError as exc:
                if exc.error_class == "request_invalid":
                    raise invalid_request(trace, name, exc) from exc
                last = exc
                if should_retry(exc, retry, max_retries, more_steps=more_steps):
                    delay = backoff_delay(retry, exc.retry_after_s)
                    if delay is not None:
                        retry += 1
                        if attempts:
                            attempts[-1].wait_s = delay
                        await asyncio.sleep(delay)
                        continue
                break
    raise all_failed(trace, attempts, skipped, last, steps)
