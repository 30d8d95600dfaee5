"""Measured latency, read by the engine to rank models (routing.engine.stats)."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from datetime import datetime

from metrics.models import CallRecord, CallStatus


def calls_latency_p50(
    *, model_names: Iterable[str], since: datetime, min_calls: int, sample: int
) -> dict[str, float]:
    """Median latency (ms) of each model's latest `sample` ok calls since `since`, for the
    models with at least `min_calls` of them (sync ORM)."""
    out: dict[str, float] = {}
    for name in model_names:
        values = [
            v
            for v in CallRecord.objects.filter(
                model_name=name, status=CallStatus.OK, created_at__gte=since, latency_ms__isnull=False
            )
            .order_by("-created_at")
            .values_list("latency_ms", flat=True)[:sample]
            if v is not None
        ]
        if len(values) >= max(min_calls, 1):
            out[name] = float(statistics.median(values))
    return out
