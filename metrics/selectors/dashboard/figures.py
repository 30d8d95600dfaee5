"""Every figure of the dashboard, folded in one pass over the rows `reads` returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from metrics.filters import Query
from metrics.histogram import Hist, hist_merge, hist_merge_encoded, hist_percentiles
from metrics.models import CallStatus, RollupState
from metrics.selectors.dashboard.reads import (
    MODEL_FIELDS,
    ROLLUP_FIELDS,
    bucket_starts,
    grouped_rows,
    model_rows,
    rollup_rows,
    source_counts,
    tail_rows,
)
from metrics.selectors.dashboard.types import ERROR_STATUSES, Bucket, DashboardData, Totals

# Index in a full row (ROLLUP_FIELDS: bucket, then the DIMENSIONS, then the measures).
BREAKDOWN_DIMS = {"route": 3, "provider": 2, "key": 4, "prompt": 6, "source": 5, "endpoint": 10}
FINE_FILTERS = ("provider", "route", "key", "endpoint")  # need the full-dimension rollup


def _add_series(series: dict[tuple[datetime, str], Bucket], row: tuple[Any, ...]) -> None:
    """row: bucket, model, status, count, in, out, cost, unknown, lat sum, lat count, ttft hist, lat hist."""
    bucket, model, status, count, tin, tout, cost, unknown, lsum, lcnt, ttft_h, lat_h = row
    s = series.get((bucket, model))
    if s is None:
        s = series[(bucket, model)] = Bucket()
    s.add(
        count=count,
        errors=count if status in ERROR_STATUSES else 0,
        cost=cost,
        input_tokens=tin,
        output_tokens=tout,
        latency_sum=lsum,
        latency_count=lcnt,
        cost_unknown=unknown,
    )
    hist_merge_encoded(s.latency_hist, lat_h)
    hist_merge_encoded(s.ttft_hist, ttft_h)


def _add_breakdowns(
    breakdowns: dict[str, dict[Any, Bucket]], chains: dict[tuple[str, int, str], int], row: tuple[Any, ...]
) -> None:
    """row: a full rollup row (ROLLUP_FIELDS layout; the bucket is ignored)."""
    model, status, chain, step = row[1], row[7], row[8], row[9]
    count, tin, tout, cost, _unknown, lsum, lcnt = row[11:18]
    errors = count if status in ERROR_STATUSES else 0
    for name, index in BREAKDOWN_DIMS.items():
        value = row[index]
        group = breakdowns[name]
        b = group.get(value)
        if b is None:
            b = group[value] = Bucket()
        b.add(
            count=count,
            errors=errors,
            cost=cost,
            input_tokens=tin,
            output_tokens=tout,
            latency_sum=lsum,
            latency_count=lcnt,
        )
    if chain and status == CallStatus.OK:
        k = (chain, step, model)
        chains[k] = chains.get(k, 0) + count


def _as_series_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (
        row[0],
        row[1],
        row[7],
        row[11],
        row[12],
        row[13],
        row[14],
        row[15],
        row[16],
        row[17],
        row[18],
        row[19],
    )


def dashboard_figures(*, q: Query) -> DashboardData:
    """Every figure of the dashboard for the window and filters of q.

    Without a provider/route/key filter the charts read the per-model rollup (a few rows per
    bucket) and the breakdowns one GROUP BY over the full rollup; with one, both read the
    full rollup's rows matching the filter.
    """
    notes: list[str] = []
    state = RollupState.objects.filter(pk=1).first()
    tail = tail_rows(q, q.start, q.end, state, notes)
    series: dict[tuple[datetime, str], Bucket] = {}
    breakdowns: dict[str, dict[Any, Bucket]] = {name: {} for name in BREAKDOWN_DIMS}
    chains: dict[tuple[str, int, str], int] = {}
    if any(f in q.filters for f in FINE_FILTERS):
        for row in rollup_rows(q, q.start, q.end, ROLLUP_FIELDS):
            _add_series(series, _as_series_row(row))
            _add_breakdowns(breakdowns, chains, row)
    else:
        for row in model_rows(q, q.start, q.end, MODEL_FIELDS):
            _add_series(series, row)
        for row in grouped_rows(q):
            _add_breakdowns(breakdowns, chains, row)
    for row in tail:
        _add_series(series, _as_series_row(row))
        _add_breakdowns(breakdowns, chains, row)

    by_model: dict[str, Bucket] = {}
    for (_bucket, model), s in series.items():
        m = by_model.get(model)
        if m is None:
            m = by_model[model] = Bucket()
        m.add_sums(s)
        hist_merge(m.latency_hist, s.latency_hist)
        hist_merge(m.ttft_hist, s.ttft_hist)
    all_hist: Hist = {}
    totals = Totals()
    for m in by_model.values():
        totals.count += m.count
        totals.errors += m.errors
        totals.cost += m.cost
        totals.tokens += m.input_tokens + m.output_tokens
        hist_merge(all_hist, m.latency_hist)
    totals.p50, totals.p95 = hist_percentiles(all_hist, (50, 95))

    previous = _previous_totals(q, state)
    # The default view shows live traffic only: say how much it leaves out, and of what.
    hidden = source_counts(q.with_source("test"), state) if q.source == "live" else {}
    return DashboardData(
        buckets=bucket_starts(q.grain, q.start, q.end),
        series=series,
        by_model=by_model,
        breakdowns=breakdowns,
        chains=chains,
        totals=totals,
        previous=previous,
        covered_until=state.covered_until if state else None,
        notes=notes,
        hidden=hidden,
    )


def _previous_totals(q: Query, state: RollupState | None) -> Totals:
    start, end = q.previous
    fields = ("status", "count", "cost_usd", "input_tokens", "output_tokens", "latency_hist")
    read = rollup_rows if any(f in q.filters for f in FINE_FILTERS) else model_rows
    rows: list[tuple[Any, ...]] = list(read(q, start, end, fields, coarse=True))
    for t in tail_rows(q, start, end, state, []):
        rows.append((t[7], t[11], t[14], t[12], t[13], t[19]))
    totals = Totals()
    hist: Hist = {}
    for status, count, cost, tin, tout, lat_h in rows:
        totals.count += count
        if status in ERROR_STATUSES:
            totals.errors += count
        totals.cost += cost
        totals.tokens += tin + tout
        hist_merge_encoded(hist, lat_h)
    totals.p50, totals.p95 = hist_percentiles(hist, (50, 95))
    return totals


def unpriced_names(data: DashboardData) -> dict[str, int]:
    """Models in the window with calls of unknown price → how many such calls."""
    return {m: b.cost_unknown for m, b in sorted(data.by_model.items()) if b.cost_unknown}
