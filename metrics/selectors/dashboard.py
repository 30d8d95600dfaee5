"""Dashboard figures: rollup rows for the window plus the live tail from raw rows.

One query fetches every rollup row of the window (bounded by buckets × dimension
combinations, not by call volume); one more reads the raw rows created since the last
rollup run (at most TAIL_MAX of them by time). Everything else is folded in one pass here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q, Sum
from django.utils import timezone

from metrics.filters import FilterChoices, Query
from metrics.histogram import Hist, hist_merge, hist_merge_encoded, hist_percentiles
from metrics.models import (
    CallRecord,
    CallRollup,
    CallRollupByModel,
    CallStatus,
    RollupGrain,
    RollupState,
    Source,
)
from metrics.rollups import DIMENSIONS, RAW_FIELDS, aggregate_raw, floor_to, hist_encode, step_after

TAIL_MAX = timedelta(minutes=30)
ERROR_STATUSES = frozenset({CallStatus.ERROR, CallStatus.TIMEOUT})

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


@dataclass
class Bucket:
    """Sums for a group (a model in a time bucket, a route, a provider…)."""

    count: int = 0
    errors: int = 0
    cost: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    latency_sum: float = 0.0
    latency_count: int = 0
    cost_unknown: int = 0
    latency_hist: Hist = field(default_factory=dict)
    ttft_hist: Hist = field(default_factory=dict)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.count if self.count else None

    @property
    def avg_latency(self) -> float | None:
        return self.latency_sum / self.latency_count if self.latency_count else None

    def percentiles(self, *ps: float) -> list[float | None]:
        return hist_percentiles(self.latency_hist, ps)

    def ttft_percentiles(self, *ps: float) -> list[float | None]:
        return hist_percentiles(self.ttft_hist, ps)

    def add_sums(self, other: Bucket) -> None:
        self.count += other.count
        self.errors += other.errors
        self.cost += other.cost
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.latency_sum += other.latency_sum
        self.latency_count += other.latency_count
        self.cost_unknown += other.cost_unknown


@dataclass
class Totals:
    count: int = 0
    errors: int = 0
    cost: Decimal = Decimal(0)
    tokens: int = 0
    p50: float | None = None
    p95: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.count if self.count else None


@dataclass
class DashboardData:
    buckets: list[datetime]
    series: dict[tuple[datetime, str], Bucket]
    by_model: dict[str, Bucket]
    breakdowns: dict[str, dict[Any, Bucket]]
    chains: dict[tuple[str, int, str], int]
    totals: Totals
    previous: Totals
    covered_until: datetime | None
    notes: list[str]

    @property
    def models(self) -> list[str]:
        return sorted(self.by_model, key=lambda m: (-self.by_model[m].cost, -self.by_model[m].count, m))

    @property
    def empty(self) -> bool:
        return self.totals.count == 0


RAW_INDEX = {name: i for i, name in enumerate(RAW_FIELDS)}


def _tail_rows(
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
        wanted = {RAW_INDEX[field]: value for field, value in q.lookups().items()}
        rows = [
            row
            for row in CallRecord.objects.filter(id__gt=state.last_record_id)
            .order_by()
            .values_list(*RAW_FIELDS)
            if lower <= row[0] < end and all(row[i] == v for i, v in wanted.items())
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


def _rollup_rows(
    q: Query, start: datetime, end: datetime, fields: Iterable[str], coarse: bool = False
) -> Any:
    return (
        CallRollup.objects.filter(_window(q, start, end, coarse), **q.lookups())
        .order_by()
        .values_list(*fields)
    )


def _model_rows(q: Query, start: datetime, end: datetime, fields: Iterable[str], coarse: bool = False) -> Any:
    lookups = {k: v for k, v in q.lookups().items() if k in ("model_name", "status")}
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


BREAKDOWN_DIMS = {"route": 3, "provider": 2, "key": 4, "prompt": 6, "source": 5}  # index in a full row
FINE_FILTERS = ("provider", "route", "key")  # need the full-dimension rollup
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
)


def _add_series(series: dict[tuple[datetime, str], Bucket], row: tuple[Any, ...]) -> None:
    """row: bucket, model, status, count, in, out, cost, unknown, lat sum, lat count, ttft hist, lat hist."""
    bucket, model, status, count, tin, tout, cost, unknown, lsum, lcnt, ttft_h, lat_h = row
    s = series.get((bucket, model))
    if s is None:
        s = series[(bucket, model)] = Bucket()
    s.count += count
    if status in ERROR_STATUSES:
        s.errors += count
    s.cost += cost
    s.input_tokens += tin
    s.output_tokens += tout
    s.latency_sum += lsum
    s.latency_count += lcnt
    s.cost_unknown += unknown
    hist_merge_encoded(s.latency_hist, lat_h)
    hist_merge_encoded(s.ttft_hist, ttft_h)


def _add_breakdowns(
    breakdowns: dict[str, dict[Any, Bucket]], chains: dict[tuple[str, int, str], int], row: tuple[Any, ...]
) -> None:
    """row: a full rollup row (ROLLUP_FIELDS layout; the bucket is ignored)."""
    model, status, chain, step = row[1], row[7], row[8], row[9]
    count, tin, tout, cost, _unknown, lsum, lcnt = row[10:17]
    errors = count if status in ERROR_STATUSES else 0
    for name, index in BREAKDOWN_DIMS.items():
        value = row[index]
        group = breakdowns[name]
        b = group.get(value)
        if b is None:
            b = group[value] = Bucket()
        b.count += count
        b.errors += errors
        b.cost += cost
        b.input_tokens += tin
        b.output_tokens += tout
        b.latency_sum += lsum
        b.latency_count += lcnt
    if chain and status == CallStatus.OK:
        k = (chain, step, model)
        chains[k] = chains.get(k, 0) + count


def _as_series_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return (
        row[0],
        row[1],
        row[7],
        row[10],
        row[11],
        row[12],
        row[13],
        row[14],
        row[15],
        row[16],
        row[17],
        row[18],
    )


def _grouped_rows(q: Query) -> list[tuple[Any, ...]]:
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
    for model, prov, task, key, src, pv, chain, step, status, n, tin, tout, cost, lsum, lcnt in qs:
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


def dashboard_figures(*, q: Query) -> DashboardData:
    """Every figure of the dashboard for the window and filters of q.

    Without a provider/route/key filter the charts read the per-model rollup (a few rows per
    bucket) and the breakdowns one GROUP BY over the full rollup; with one, both read the
    full rollup's rows matching the filter.
    """
    notes: list[str] = []
    state = RollupState.objects.filter(pk=1).first()
    tail = _tail_rows(q, q.start, q.end, state, notes)
    series: dict[tuple[datetime, str], Bucket] = {}
    breakdowns: dict[str, dict[Any, Bucket]] = {name: {} for name in BREAKDOWN_DIMS}
    chains: dict[tuple[str, int, str], int] = {}
    if any(f in q.filters for f in FINE_FILTERS):
        for row in _rollup_rows(q, q.start, q.end, ROLLUP_FIELDS):
            _add_series(series, _as_series_row(row))
            _add_breakdowns(breakdowns, chains, row)
    else:
        for row in _model_rows(q, q.start, q.end, MODEL_FIELDS):
            _add_series(series, row)
        for row in _grouped_rows(q):
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
    )


def _previous_totals(q: Query, state: RollupState | None) -> Totals:
    start, end = q.previous
    fields = ("status", "count", "cost_usd", "input_tokens", "output_tokens", "latency_hist")
    read = _rollup_rows if any(f in q.filters for f in FINE_FILTERS) else _model_rows
    rows: list[tuple[Any, ...]] = list(read(q, start, end, fields, coarse=True))
    for t in _tail_rows(q, start, end, state, []):
        rows.append((t[7], t[10], t[13], t[11], t[12], t[18]))
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


def filter_choices() -> FilterChoices:
    from gateway.models import ApiKey
    from routing.models import ModelConfig, Provider, TaskRoute

    return FilterChoices(
        models=list(ModelConfig.objects.order_by("name").values_list("name", flat=True)),
        providers=list(Provider.objects.order_by("name").values_list("name", flat=True)),
        routes=list(TaskRoute.objects.order_by("task_type").values_list("task_type", flat=True)),
        keys=list(ApiKey.objects.order_by("name").values_list("id", "name")),
    )


def label_maps(data: DashboardData) -> dict[str, dict[Any, str]]:
    """Readable names for the id-valued breakdowns (API keys, prompt versions, sources)."""
    from gateway.models import ApiKey
    from routing.models import PromptVersion

    key_ids = [k for k in data.breakdowns["key"] if k]
    pv_ids = [p for p in data.breakdowns["prompt"] if p]
    keys = dict(ApiKey.objects.filter(id__in=key_ids).values_list("id", "name")) if key_ids else {}
    prompts: dict[Any, str] = {}
    if pv_ids:
        for pv in PromptVersion.objects.filter(id__in=pv_ids).select_related("route", "model"):
            prompts[pv.id] = str(pv)
    return {
        "key": {0: "(no key)", **{k: keys.get(k, f"key #{k} (deleted)") for k in key_ids}},
        "prompt": {0: "(no prompt version)", **{p: prompts.get(p, f"#{p} (deleted)") for p in pv_ids}},
        "source": dict(Source.choices),
        "route": {"": "(no route)"},
        "provider": {"": "(unknown)"},
    }


def unpriced_models(data: DashboardData) -> list[dict[str, Any]]:
    """Models in the window with calls of unknown price, with their config id for the admin link."""
    from routing.models import ModelConfig

    names = [m for m, b in data.by_model.items() if b.cost_unknown]
    if not names:
        return []
    ids = dict(ModelConfig.objects.filter(name__in=names).values_list("name", "id"))
    return [
        {"name": n, "calls": data.by_model[n].cost_unknown, "config_id": ids.get(n)} for n in sorted(names)
    ]


def breaker_states() -> dict[str, dict[str, Any]] | None:
    try:
        from routing.engine.breaker import breaker_states as states

        return dict(states())
    except Exception:  # the engine may not provide it yet; the dashboard still renders
        return None


def budget_alerts() -> list[dict[str, Any]] | None:
    try:
        from gateway.selectors import budget_alerts_active

        return list(budget_alerts_active())
    except Exception:  # the gateway may not provide it yet
        return None
