"""What the attempt loop decides from: why a step is skipped, whether a failure is retried
and after how long, and the answer's post-processing (`routing.engine.attempts` drives it)."""

from __future__ import annotations

import random
from typing import Any

from routing.engine.breaker import breaker_is_open
from routing.engine.selection import capability_missing, model_unusable, request_refused
from routing.engine.trace import Step, Trace, conf
from routing.errors import ProviderError
from routing.models import EMBEDDING
from routing.processors import processor_get
from routing.providers.base import Choice

Skip = tuple[str, str]  # (category, reason)


def refusal_skip(trace: Trace, step: Step) -> Skip | None:
    """("unsupported", reason) when the model's kind cannot honour the trace's sampling or
    chat options."""
    refused = request_refused(step.model, trace.sampling, trace.chat)
    if refused is None:
        return None
    trace.refused[step.model.name] = refused[0]
    return "unsupported", refused[1]


def capability_skip(trace: Trace, step: Step) -> Skip | None:
    """("capability", "no vision") when the model lacks a capability the request needs."""
    if not trace.needs:
        return None
    missing = capability_missing(step.model, trace.needs)
    return ("capability", missing) if missing is not None else None


def chat_skip(step: Step) -> Skip | None:
    """The chat paths' own reason to pass a step over: an embedding model does not chat."""
    if EMBEDDING in step.model.capabilities:
        return "capability", "an embedding model, not a chat model"
    return None


def skip_reason(trace: Trace, step: Step) -> Skip | None:
    """Why the loop passes over `step` without calling it, or None to try it."""
    problem = model_unusable(step.model) or capability_skip(trace, step) or refusal_skip(trace, step)
    if problem is None and breaker_is_open(step.model.name):
        problem = ("circuit", "circuit open")
    return problem


def should_retry(error: ProviderError, retry: int, max_retries: int, *, more_steps: bool) -> bool:
    """Transient errors are retried on the same model, except a timeout when another model
    is left to try: the step's whole time budget is spent, so failing over is faster."""
    if error.error_class != "transient" or retry >= max_retries:
        return False
    return not (error.timeout and more_steps)


def backoff_delay(retry: int, retry_after_s: float | None) -> float | None:
    """Seconds to wait before retry number `retry` (0-based); None: do not wait, move on."""
    if retry_after_s is not None:
        if retry_after_s > float(conf("RETRY_AFTER_CAP_S", 10.0)):
            return None
        return max(retry_after_s, 0.0)
    base = float(conf("RETRY_BASE_S", 0.25)) * (2**retry)
    return min(base * random.uniform(0.5, 1.5), float(conf("RETRY_MAX_DELAY_S", 4.0)))


def status_for(error: ProviderError) -> str:
    return "timeout" if error.timeout else "error"


def timeout_for(step: Step) -> float:
    return float(step.timeout_s or conf("DEFAULT_TIMEOUT_S", 60))


def postprocess(trace: Trace, text: str, *, tool_calls: list[dict[str, Any]] | None = None) -> str:
    """The route's post-processor applied to a final answer's text. An answer that calls
    tools is not final (its text, if any, is a preamble): it is left as it is."""
    route = trace.route
    if route is None or not route.postprocessor or tool_calls:
        return text
    return processor_get(route.postprocessor)(text, **trace.processor_options)


def choice_dict(trace: Trace, choice: Choice) -> dict[str, Any]:
    """Choice 1… of an answer as a Result carries it (post-processed like choice 0)."""
    return {
        "text": postprocess(trace, choice.text, tool_calls=choice.tool_calls),
        "finish_reason": choice.finish_reason,
        "tool_calls": choice.tool_calls,
        "logprobs": choice.logprobs,
    }
