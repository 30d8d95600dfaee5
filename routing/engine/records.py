"""The one CallRecord of each attempt: what was sent, what it cost, and queueing the record."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from metrics.services import call_record_enqueue, unknown_price_warn
from routing.engine.config import ModelSnap
from routing.engine.trace import Messages, Step, Trace, conf
from routing.engine.types import AttemptInfo, Usage
from routing.errors import ProviderError
from routing.messages import record_view
from routing.pricing import call_cost

logger = logging.getLogger(__name__)


def messages_for(trace: Trace, model: ModelSnap, messages: Messages) -> tuple[Messages, int | None]:
    """The messages sent to `model`: the system prompt override (which replaces the caller's
    system messages), or the route's prompt (per-model variant first), then the caller's own
    system messages, then the rest of the conversation. Returns the prompt version used."""
    if trace.system is not None:
        rest = [m for m in messages if m.get("role") != "system"]
        return ([{"role": "system", "content": trace.system}, *rest] if trace.system else rest), None
    if trace.route is not None:
        prompt = trace.route.prompt_for(model.name)
        if prompt is not None:
            head = {"role": "system", "content": prompt.system_prompt}
            if len(messages) == 1:
                return [head, messages[0]], prompt.id
            own = [m for m in messages if m.get("role") == "system"]
            rest = [m for m in messages if m.get("role") != "system"] if own else messages
            return [head, *own, *rest], prompt.id
    return messages, None


def request_text(messages: Messages) -> str:
    """The conversation as the record keeps it (tool calls and results included, images as
    placeholders): `routing.messages.record_view`."""
    if int(conf("RECORD_TEXT_LIMIT", 20_000)) <= 0:
        return ""
    return record_view(messages)


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
            endpoint=trace.endpoint,
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
