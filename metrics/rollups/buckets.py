"""Rollup time buckets: minutes and hours in UTC, days from local midnight of TIME_ZONE."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from zoneinfo import ZoneInfo

from django.conf import settings

from metrics.models import RollupGrain

HOUR = timedelta(hours=1)


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
