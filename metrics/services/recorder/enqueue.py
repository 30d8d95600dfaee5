"""Queueing one call record: cheap, no database (the writer thread or a flush writes it)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from metrics.services.recorder.buffer import MAX_PENDING, WAKE_AT, buffer, interval, limit, wake
from metrics.services.recorder.thread import writer_thread_ensure
from metrics.services.spool import spool_append, spool_release
from metrics.services.storable import fields_storable

logger = logging.getLogger(__name__)

_warned_unknown_price: set[str] = set()


def text_truncate(text: str, limit: int) -> str:
    if limit <= 0 or not text:
        return ""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def unknown_price_warn(model_name: str) -> None:
    """Log once per model (per process) that its calls are recorded without a cost."""
    if model_name in _warned_unknown_price:
        return
    _warned_unknown_price.add(model_name)
    logger.warning(
        "No price known for model %s: its calls are recorded with cost unknown (not $0). "
        "Set an override price on the model or update the price catalogue.",
        model_name,
    )


def call_record_enqueue(
    *,
    trace_id: str,
    model_name: str,
    status: str,
    attempt: int = 1,
    source: str = "api",
    endpoint: str = "",
    role: str = "",
    route_id: int | None = None,
    task_type: str = "",
    chain_name: str = "",
    chain_step: int | None = None,
    prompt_version_id: int | None = None,
    model_id: int | None = None,
    provider_name: str = "",
    provider_kind: str = "",
    provider_model_id: str = "",
    api_key_id: int | None = None,
    error_class: str = "",
    http_status: int | None = None,
    error_message: str = "",
    latency_ms: float | None = None,
    ttft_ms: float | None = None,
    stream: bool = False,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cached_tokens: int = 0,
    input_price_per_1k: Decimal | None = None,
    output_price_per_1k: Decimal | None = None,
    price_source: str = "",
    cost_usd: Decimal | None = None,
    request_text: str = "",
    response_text: str = "",
    simulated: bool = False,
    created_at: datetime | None = None,
    on_written: Callable[[int], None] | None = None,
) -> bool:
    """Queue the CallRecord of one finished attempt for writing (cheap: no model instance,
    no database; the writer builds and inserts the rows in bulk).

    `on_written(pk)` is called with the row's id once it is in the database, from
    whichever thread wrote it. Returns False only if the fields could not even be prepared
    (logged)."""
    try:
        text_limit = limit("RECORD_TEXT_LIMIT", 20_000)
        fields: dict[str, Any] = {
            "trace_id": trace_id,
            "source": source,
            "endpoint": endpoint[:32],
            "role": role[:16],
            "route_id": route_id,
            "task_type": task_type,
            "chain_name": chain_name,
            "chain_step": chain_step,
            "prompt_version_id": prompt_version_id,
            "model_id": model_id,
            "model_name": model_name[:100],
            "provider_name": provider_name,
            "provider_kind": provider_kind,
            "provider_model_id": provider_model_id[:200],
            "api_key_id": api_key_id,
            "attempt": attempt,
            "status": status,
            "error_class": error_class,
            "http_status": http_status,
            "error_message": text_truncate(error_message, limit("ERROR_MESSAGE_LIMIT", 2_000)),
            "latency_ms": latency_ms,
            "ttft_ms": ttft_ms,
            "stream": stream,
            "input_tokens": max(int(input_tokens or 0), 0),
            "output_tokens": max(int(output_tokens or 0), 0),
            "cached_tokens": max(int(cached_tokens or 0), 0),
            "cost_usd": cost_usd,
            "input_price_per_1k": input_price_per_1k,
            "output_price_per_1k": output_price_per_1k,
            "price_source": price_source,
            "request_text": text_truncate(request_text, text_limit),
            "response_text": text_truncate(response_text, text_limit),
            "simulated": simulated,
            "created_at": created_at or timezone.now(),
        }
        fields_storable(fields)
    except Exception:
        logger.exception("could not prepare a call record for %s (trace %s)", model_name, trace_id)
        return False
    every = interval()
    # Inline writing (interval 0, the tests) writes before the call returns: nothing to spool.
    segment = spool_append(fields) if every > 0 else None
    if len(buffer) >= MAX_PENDING:
        _drop_oldest()
    buffer.append((fields, on_written, segment))
    if every > 0:
        writer_thread_ensure()
        if len(buffer) >= WAKE_AT:
            wake.set()
    return True


_dropped = 0


def _drop_oldest() -> None:
    global _dropped
    try:
        entry = buffer.popleft()
    except IndexError:
        return
    spool_release([entry[2]])
    _dropped += 1
    if _dropped % 1000 == 1:
        logger.error("call record buffer full (database unavailable?): %d records dropped so far", _dropped)


def enqueue_reset_for_tests() -> None:
    _warned_unknown_price.clear()
