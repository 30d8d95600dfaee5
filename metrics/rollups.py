"""Rollups: CallRecords folded into per-bucket aggregates that dashboards read.

`rollup_run()` is the one writer. Each run:
1. claims the RollupState row with a conditional UPDATE (a lease), so two workers never
   rebuild the same bucket at once; the lease is renewed after every hour it rebuilds;
2. finds the hours to rebuild: those holding records with an id above the watermark
   (including backdated ones), plus every hour from a few minutes before the last run's
   cut-off up to now (catches rows whose transaction committed late);
3. rebuilds each hour whole from raw rows created before the cut-off: minute rows (kept
   for MINUTE_RETENTION) and the hour row, replacing what was there, so re-running never
   double-counts; then rebuilds the touched days from their hour rows;
4. moves the watermark and `covered_until` (the cut-off): rollups hold exactly the
   records with an id up to the watermark created before the cut-off; dashboards read the
   rest (a newer id or a later created_at) from raw rows.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from metrics.histogram import Hist, hist_add, hist_encode, hist_merge, hist_merge_encoded
from metrics.models import CallRecord, CallRollup, CallRollupByModel, RollupGrain, RollupState

logger = logging.getLogger(__name__)

MINUTE_RETENTION = timedelta(hours=48)
LEASE = timedelta(minutes=5)
LATE_COMMIT_SLACK = timedelta(minutes=5)
HOUR = timedelta(hours=1)

# The dimensions of a rollup row, in key order.
DIMENSIONS = (
    "model_name",
    "provider_name",
    "task_type",
    "api_key_id",
    "source",
    "prompt_version_id",
    "status",
    "chain_name",
    "chain_step",
)
_RAW_FIELDS = (
    "created_at",
    *DIMENSIONS,
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "price_source",
    "latency_ms",
    "ttft_ms",
)

Key = tuple[Any, ...]


class Agg:
    """Running sums for one dimension combination."""

    __slots__ = (
        "count",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "cost_usd",
        "cost_unknown",
        "latency_sum_ms",
        "latency_count",
        "ttft_sum_ms",
        "ttft_count",
        "latency_hist",
        "ttft_hist",
    )

    def __init__(self) -> None:
        self.count = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_tokens = 0
        self.cost_usd = Decimal(0)
        self.cost_unknown = 0
        self.latency_sum_ms = 0.0
        self.latency_count = 0
        self.ttft_sum_ms = 0.0
        self.ttft_count = 0
        self.latency_hist: Hist = {}
        self.ttft_hist: Hist = {}

    def add_raw(self, row: tuple[Any, ...]) -> None:
        """Add one raw record laid out as _RAW_FIELDS."""
        self.count += 1
        self.input_tokens += row[10] or 0
        self.output_tokens += row[11] or 0
        self.cached_tokens += row[12] or 0
        cost = row[13]
        # Unknown price: the engine says so, or a successful call has no cost. (A failed
        # call without tokens has no cost either, but its price may well be known.)
        if row[14] == "unknown" or (cost is None and row[7] == "ok"):
            self.cost_unknown += 1
        if cost is not None:
            self.cost_usd += cost
        latency = row[15]
        if latency is not None:
            self.latency_sum_ms += latency
            self.latency_count += 1
            hist_add(self.latency_hist, latency)
        ttft = row[16]
        if ttft is not None:
            self.ttft_sum_ms += ttft
            self.ttft_count += 1
            hist_add(self.ttft_hist, ttft)

    def merge(self, other: Agg) -> None:
        self.count += other.count
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.cost_usd += other.cost_usd
        self.cost_unknown += other.cost_unknown
        self.latency_sum_ms += other.latency_sum_ms
        self.latency_count += other.latency_count
        self.ttft_sum_ms += other.ttft_sum_ms
        self.ttft_count += other.ttft_count
        hist_merge(self.latency_hist, other.latency_hist)
        hist_merge(self.ttft_hist, other.ttft_hist)

    def merge_rollup(self, r: CallRollup | CallRollupByModel) -> None:
        self.count += r.count
        self.input_tokens += r.input_tokens
        self.output_tokens += r.output_tokens
        self.cached_tokens += r.cached_tokens
        self.cost_usd += r.cost_usd
        self.cost_unknown += r.cost_unknown
        self.latency_sum_ms += r.latency_sum_ms
        self.latency_count += r.latency_count
        self.ttft_sum_ms += r.ttft_sum_ms
        self.ttft_count += r.ttft_count
        hist_merge_encoded(self.latency_hist, r.latency_hist)
        hist_merge_encoded(self.ttft_hist, r.ttft_hist)

    def to_rollup(self, *, grain: str, bucket: datetime, key: Key) -> CallRollup:
        return CallRollup(
            grain=grain, bucket=bucket, **dict(zip(DIMENSIONS, key, strict=True)), **self._measures()
        )

    def to_model_rollup(self, *, grain: str, bucket: datetime, key: tuple[str, str]) -> CallRollupByModel:
        return CallRollupByModel(
            grain=grain, bucket=bucket, model_name=key[0], status=key[1], **self._measures()
        )

    def _measures(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "cost_usd": self.cost_usd,
            "cost_unknown": self.cost_unknown,
            "latency_sum_ms": self.latency_sum_ms,
            "latency_count": self.latency_count,
            "ttft_sum_ms": self.ttft_sum_ms,
            "ttft_count": self.ttft_count,
            "latency_hist": hist_encode(self.latency_hist),
            "ttft_hist": hist_encode(self.ttft_hist),
        }


def by_model(groups: dict[Key, Agg]) -> dict[tuple[str, str], Agg]:
    """Full-dimension aggregates folded to (model_name, status)."""
    out: dict[tuple[str, str], Agg] = {}
    for key, agg in groups.items():
        target = out.get((key[0], key[6]))
        if target is None:
            target = out[(key[0], key[6])] = Agg()
        target.merge(agg)
    return out


def raw_key(row: tuple[Any, ...]) -> Key:
    """The dimension key of a raw row laid out as _RAW_FIELDS (empty ids → 0, no step → -1)."""
    return (
        row[1],
        row[2],
        row[3],
        row[4] or 0,
        row[5],
        row[6] or 0,
        row[7],
        row[8],
        -1 if row[9] is None else row[9],
    )


RAW_FIELDS = _RAW_FIELDS


# --- time buckets -------------------------------------------------------------------------


def local_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def floor_minute(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(second=0, microsecond=0)


def floor_hour(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def floor_day(dt: datetime) -> datetime:
    """Local midnight (settings.TIME_ZONE) of the day holding dt, as a UTC instant."""
    zone = local_zone()
    return datetime.combine(dt.astimezone(zone).date(), dt_time.min, tzinfo=zone).astimezone(UTC)


def next_day(day_start: datetime) -> datetime:
    """The local midnight after day_start (23 or 25 hours later across a DST change)."""
    zone = local_zone()
    following = day_start.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(following, dt_time.min, tzinfo=zone).astimezone(UTC)


def floor_to(grain: str, dt: datetime) -> datetime:
    if grain == RollupGrain.MINUTE:
        return floor_minute(dt)
    if grain == RollupGrain.HOUR:
        return floor_hour(dt)
    return floor_day(dt)


def step_after(grain: str, bucket: datetime) -> datetime:
    if grain == RollupGrain.MINUTE:
        return bucket + timedelta(minutes=1)
    if grain == RollupGrain.HOUR:
        return bucket + HOUR
    return next_day(bucket)


# --- the run ------------------------------------------------------------------------------


@dataclass
class RollupResult:
    ran: bool
    hours: int = 0
    days: int = 0
    records_seen: int = 0
    covered_until: datetime | None = None
    seconds: float = 0.0


def rollup_state() -> RollupState:
    state, _ = RollupState.objects.get_or_create(pk=1)
    return state


def _claim(token: str, now: datetime) -> bool:
    rollup_state()
    claimed = (
        RollupState.objects.filter(pk=1)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + LEASE, locked_by=token)
    )
    return claimed == 1


def _renew(token: str) -> None:
    renewed = RollupState.objects.filter(pk=1, locked_by=token).update(locked_until=timezone.now() + LEASE)
    if not renewed:
        raise RuntimeError("rollup lease lost to another worker; stopping this run")


def _hours_between(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = floor_hour(start)
    while hour < end:
        yield hour
        hour += HOUR


def rollup_run(*, now: datetime | None = None, worker: str = "") -> RollupResult:
    """Bring rollups up to date. Returns ran=False when another worker holds the lease."""
    started = time.monotonic()
    cutoff = now or timezone.now()
    token = f"{worker or 'run'}:{uuid.uuid4().hex[:12]}"
    if not _claim(token, timezone.now()):
        return RollupResult(ran=False)
    try:
        state = RollupState.objects.get(pk=1)
        max_id = CallRecord.objects.aggregate(m=Max("id"))["m"] or 0
        hours: set[datetime] = set()
        if max_id > state.last_record_id:
            new_hours = (
                CallRecord.objects.filter(id__gt=state.last_record_id, id__lte=max_id, created_at__lt=cutoff)
                .annotate(h=TruncHour("created_at", tzinfo=UTC))
                .values_list("h", flat=True)
                .distinct()
            )
            hours.update(floor_hour(h) for h in new_hours)
        if state.covered_until is not None:
            hours.update(_hours_between(state.covered_until - LATE_COMMIT_SLACK, cutoff))
        seen = 0
        for hour in sorted(hours):
            seen += _rebuild_hour(
                hour, cutoff, max_id=max_id, keep_minutes=hour >= floor_hour(cutoff - MINUTE_RETENTION)
            )
            _renew(token)
        days = sorted({floor_day(h) for h in hours})
        for day in days:
            _rebuild_day(day)
        for table in (CallRollup, CallRollupByModel):
            table.objects.filter(
                grain=RollupGrain.MINUTE, bucket__lt=floor_hour(cutoff - MINUTE_RETENTION)
            ).delete()
        seconds = time.monotonic() - started
        RollupState.objects.filter(pk=1, locked_by=token).update(
            last_record_id=max_id,
            covered_until=cutoff,
            last_run_at=timezone.now(),
            last_run_seconds=seconds,
            locked_until=None,
            locked_by="",
        )
        return RollupResult(
            ran=True,
            hours=len(hours),
            days=len(days),
            records_seen=seen,
            covered_until=cutoff,
            seconds=seconds,
        )
    except BaseException:
        RollupState.objects.filter(pk=1, locked_by=token).update(locked_until=None, locked_by="")
        raise


def _rebuild_hour(hour: datetime, cutoff: datetime, *, max_id: int, keep_minutes: bool) -> int:
    end = min(hour + HOUR, cutoff)
    minutes: dict[datetime, dict[Key, Agg]] = {}
    seen = 0
    rows = (
        CallRecord.objects.filter(created_at__gte=hour, created_at__lt=end, id__lte=max_id)
        .order_by()
        .values_list(*_RAW_FIELDS)
    )
    for row in rows.iterator(chunk_size=5000):
        seen += 1
        per_minute = minutes.setdefault(floor_minute(row[0]), {})
        key = raw_key(row)
        agg = per_minute.get(key)
        if agg is None:
            agg = per_minute[key] = Agg()
        agg.add_raw(row)
    per_hour: dict[Key, Agg] = {}
    for per_minute in minutes.values():
        for key, agg in per_minute.items():
            per_hour.setdefault(key, Agg()).merge(agg)
    objs = [agg.to_rollup(grain=RollupGrain.HOUR, bucket=hour, key=key) for key, agg in per_hour.items()]
    model_objs = [
        agg.to_model_rollup(grain=RollupGrain.HOUR, bucket=hour, key=key)
        for key, agg in by_model(per_hour).items()
    ]
    if keep_minutes:
        for minute, per_minute in minutes.items():
            objs += [
                agg.to_rollup(grain=RollupGrain.MINUTE, bucket=minute, key=key)
                for key, agg in per_minute.items()
            ]
            model_objs += [
                agg.to_model_rollup(grain=RollupGrain.MINUTE, bucket=minute, key=key)
                for key, agg in by_model(per_minute).items()
            ]
    with transaction.atomic():
        for table in (CallRollup, CallRollupByModel):
            table.objects.filter(grain=RollupGrain.HOUR, bucket=hour).delete()
            table.objects.filter(grain=RollupGrain.MINUTE, bucket__gte=hour, bucket__lt=hour + HOUR).delete()
        CallRollup.objects.bulk_create(objs, batch_size=1000)
        CallRollupByModel.objects.bulk_create(model_objs, batch_size=1000)
    return seen


def _rebuild_day(day: datetime) -> None:
    end = next_day(day)
    per_day: dict[Key, Agg] = {}
    for r in CallRollup.objects.filter(grain=RollupGrain.HOUR, bucket__gte=day, bucket__lt=end).iterator(
        chunk_size=2000
    ):
        per_day.setdefault(tuple(getattr(r, d) for d in DIMENSIONS), Agg()).merge_rollup(r)
    per_model: dict[tuple[str, str], Agg] = {}
    for m in CallRollupByModel.objects.filter(
        grain=RollupGrain.HOUR, bucket__gte=day, bucket__lt=end
    ).iterator(chunk_size=2000):
        per_model.setdefault((m.model_name, m.status), Agg()).merge_rollup(m)
    with transaction.atomic():
        CallRollup.objects.filter(grain=RollupGrain.DAY, bucket=day).delete()
        CallRollupByModel.objects.filter(grain=RollupGrain.DAY, bucket=day).delete()
        CallRollup.objects.bulk_create(
            [agg.to_rollup(grain=RollupGrain.DAY, bucket=day, key=key) for key, agg in per_day.items()],
            batch_size=1000,
        )
        CallRollupByModel.objects.bulk_create(
            [
                agg.to_model_rollup(grain=RollupGrain.DAY, bucket=day, key=key)
                for key, agg in per_model.items()
            ],
            batch_size=1000,
        )


def rollup_reset() -> None:
    """Forget every rollup (the next run rebuilds from all raw rows)."""
    with transaction.atomic():
        CallRollup.objects.all().delete()
        CallRollupByModel.objects.all().delete()
        RollupState.objects.update_or_create(
            pk=1, defaults={"last_record_id": 0, "covered_until": None, "locked_until": None, "locked_by": ""}
        )


def aggregate_raw(rows: Iterable[tuple[Any, ...]], grain: str) -> dict[tuple[datetime, Key], Agg]:
    """Raw rows (laid out as RAW_FIELDS) folded into (bucket, key) aggregates: the live tail."""
    out: dict[tuple[datetime, Key], Agg] = {}
    for row in rows:
        k = (floor_to(grain, row[0]), raw_key(row))
        agg = out.get(k)
        if agg is None:
            agg = out[k] = Agg()
        agg.add_raw(row)
    return out
