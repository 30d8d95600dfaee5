"""The one writer of rollups: claim the lease, rebuild touched hours and days, move the watermark."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Max, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from metrics.models import CallRecord, CallRollup, CallRollupByModel, RollupGrain, RollupState
from metrics.rollups.aggregates import DIMENSIONS, RAW_FIELDS, Agg, Key, ModelKey, by_model, raw_key
from metrics.rollups.buckets import HOUR, floor_day, floor_hour, floor_minute, next_day

MINUTE_RETENTION = timedelta(hours=48)
LEASE = timedelta(minutes=5)
LATE_COMMIT_SLACK = timedelta(minutes=5)


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
        .values_list(*RAW_FIELDS)
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
    per_model: dict[ModelKey, Agg] = {}
    for m in CallRollupByModel.objects.filter(
        grain=RollupGrain.HOUR, bucket__gte=day, bucket__lt=end
    ).iterator(chunk_size=2000):
        per_model.setdefault((m.model_name, m.source, m.status), Agg()).merge_rollup(m)
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
