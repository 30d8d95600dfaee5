"""The reads behind the dashboard: rollup rows of a window and the live tail from raw rows.

One query fetches every rollup row of the window (bounded by buckets × dimension
combinations, not by call volume); one more reads the raw rows created since the last
rollup run (at most TAIL_MAX of them by time).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q, Sum
from django.utils import timezone

from metrics.filters import Query
from metrics.histogram import hist_encode
from metrics.models import CallRecord, CallRollup, CallRollupByModel, RollupGrain, RollupState
from metrics.rollups import DIMENSIONS, RAW_FIELDS, aggregate_raw, floor_to, step_after

TAIL_MAX = timedelta(minutes=30)

ROLLUP_FIELDS = (
    "bucket",
    *DIMENSIONS,
    "count",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cost_unknown",
    "latency_sum_ms",
    "latency_count",
    "ttft_hist",
    "latency_hist",
)
RAW_INDEX = {name: i for i, name in enumerate(RAW_FIELDS)}


def _wanted(q: Query) -> dict[int, frozenset[Any]]:
    """The filters as (raw row index → allowed values), for rows filtered here, not in SQL."""
    out: dict[int, frozenset[Any]] = {}
    for lookup, value in q.lookups().items():
        field, _, op = lookup.partition("__")
        out[RAW_INDEX[field]] = frozenset(value) if op == "in" else frozenset([value])  # type: ignore[arg-type]
    return out


def tail_rows(
    q: Query, start: datetime, end: datetime, state: RollupState | None, notes: list[str]
) -> list[tuple[Any, ...]]:
    """Rollup-shaped tuples for the raw rows in [start, end) that no rollup holds yet.

    A rollup run holds exactly the records with id <= its watermark created before its
    cut-off, so the rest is: a newer id, or a later created_at.
    """
    covered = state.covered_until if state else None
    floor = timezone.now() - TAIL_MAX
    lower = start
    if covered is None or covered < floor:
        lower = max(start, floor)
        missed = CallRecord.objects.filter(created_at__gte=start, created_at__lt=lower)
        if covered is not None:
            missed = missed.filter(created_at__gte=covered)
        if lower > start and missed.exists():
            when = f"last ran {covered:%Y-%m-%d %H:%M} UTC" if covered else "have not run yet"
            notes.append(
                f"Rollups {when}: only the last {int(TAIL_MAX.total_seconds() // 60)} minutes are read live, "
                "so older calls are missing until the worker catches up (`make run` runs it every minute; "
                "or `python manage.py rollup_calls`)."
            )
    if lower >= end:
        return []
    rows: list[tuple[Any, ...]]
    if covered is None or state is None or lower > start:
        # Never ran, or stale: the last TAIL_MAX by time, nothing older.
        rows = list(
            CallRecord.objects.filter(created_at__gte=lower, created_at__lt=end, **q.lookups())
            .order_by()
            .values_list(*RAW_FIELDS)
        )
    else:
        # Two narrow reads rather than one OR, which planners answer by walking the window:
        # records newer than the watermark (by primary key; the window and filters are
        # applied here, so no other index tempts the planner), and records at or after the
        # cut-off that the last run saw but left out.
        wanted = _wanted(q)
        rows = [
            row
            for row in CallRecord.objects.filter(id__gt=state.last_record_id)
            .order_by()
            .values_list(*RAW_FIELDS)
            if lower <= row[0] < end and all(row[i] in allowed for i, allowed in wanted.items())
        ]
        if max(lower, covered) < end:
            rows += CallRecord.objects.filter(
                created_at__gte=max(lower, covered),
                created_at__lt=end,
                id__lte=state.last_record_id,
                **q.lookups(),
            ).values_list(*RAW_FIELDS)
    out: list[tuple[Any, ...]] = []
    for (bucket, key), agg in aggregate_raw(rows, q.grain).items():
        out.append(
            (
                bucket,
                *key,
                agg.count,
                agg.input_tokens,
                agg.output_tokens,
                agg.cost_usd,
                agg.cost_unknown,
                agg.latency_sum_ms,
                agg.latency_count,
                hist_encode(agg.ttft_hist),
                hist_encode(agg.latency_hist),
            )
        )
    return out


def segments(grain: str, start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """[start, end) covered by as few rollup rows as possible: whole coarser buckets inside,
    rows of `grain` at the edges. For sums over the window, where time detail is not needed."""
    if grain == RollupGrain.DAY:
        return [(grain, start, end)]
    coarser = RollupGrain.HOUR if grain == RollupGrain.MINUTE else RollupGrain.DAY
    first = floor_to(coarser, start)
    if first < start:
        first = step_after(coarser, first)
    last = floor_to(coarser, end)
    if first >= last:
        return [(grain, start, end)]
    out = [(str(coarser), first, last)]
    if start < first:
        out.insert(0, (grain, start, first))
    if last < end:
        out.append((grain, last, end))
    return out


def _window(q: Query, start: datetime, end: datetime, coarse: bool) -> Q:
    parts = segments(q.grain, start, end) if coarse else [(q.grain, start, end)]
    where = Q()
    for grain, lo, hi in parts:
        where |= Q(grain=grain, bucket__gte=lo, bucket__lt=hi)
    return where


def rollup_rows(q: Query, start: datetime, end: datetime, fields: Iterable[str], coarse: bool = False) -> Any:
    return (
        CallRollup.objects.filter(_window(q, start, end, coarse), **q.lookups())
        .order_by()
        .values_list(*fields)
    )


def model_rows(q: Query, start: datetime, end: datetime, fields: Iterable[str], coarse: bool = False) -> Any:
    lookups = {k: v for k, v in q.lookups().items() if k in ("model_name", "status", "source", "source__in")}
    return (
        CallRollupByModel.objects.filter(_window(q, start, end, coarse), **lookups)
        .order_by()
        .values_list(*fields)
    )


def bucket_starts(grain: str, start: datetime, end: datetime) -> list[datetime]:
    out: list[datetime] = []
    b = start
    while b < end and len(out) < 5000:
        out.append(b)
        b = step_after(grain, b)
    return out


MODEL_FIELDS = (
    "bucket",
    "model_name",
    "status",
    "count",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cost_unknown",
    "latency_sum_ms",
    "latency_count",
    "ttft_hist",
    "latency_hist",
)
GROUP_DIMS = (
    "provider_name",
    "task_type",
    "api_key_id",
    "source",
    "prompt_version_id",
    "chain_name",
    "chain_step",
    "endpoint",
)


def grouped_rows(q: Query) -> list[tuple[Any, ...]]:
    """Full-dimension sums over the whole window (no time buckets), in ROLLUP_FIELDS layout."""
    qs = (
        CallRollup.objects.filter(_window(q, q.start, q.end, coarse=True), **q.lookups())
        .order_by()
        .values_list("model_name", *GROUP_DIMS, "status")
        .annotate(
            n=Sum("count"),
            tin=Sum("input_tokens"),
            tout=Sum("output_tokens"),
            cost=Sum("cost_usd"),
            lsum=Sum("latency_sum_ms"),
            lcnt=Sum("latency_count"),
        )
    )
    out = []
    for model, prov, task, key, src, pv, chain, step, endpoint, status, n, tin, tout, cost, lsum, lcnt in qs:
        out.append(
            (
                None,
                model,
                prov,
                task,
                key,
                src,
                pv,
                status,
                chain,
                step,
                endpoint,
                n,
                tin,
                tout,
                cost or Decimal(0),
                0,
                lsum,
                lcnt,
            )
        )
    return out


def source_counts(q: Query, state: RollupState | None) -> dict[str, int]:
    """Calls per source in q's window and filters: one GROUP BY over the per-model rollup (or
    the full one under a route, provider or key filter) plus the live tail."""
    fine = any(k not in ("model_name", "status", "source", "source__in") for k in q.lookups())
    table = CallRollup if fine else CallRollupByModel
    lookups = q.lookups()
    out: dict[str, int] = {}
    for source, n in (
        table.objects.filter(_window(q, q.start, q.end, coarse=True), **lookups)  # type: ignore[attr-defined]
        .order_by()
        .values_list("source")
        .annotate(n=Sum("count"))
    ):
        out[source] = out.get(source, 0) + n
    for row in tail_rows(q, q.start, q.end, state, []):
        out[row[5]] = out.get(row[5], 0) + row[11]
    return {s: n for s, n in out.items() if n}
