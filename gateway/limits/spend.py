"""A key's spend in its budget period: the counter, seeded from the call records (the
source of truth) when it is cold or older than SPEND_TTL_S."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from asgiref.sync import sync_to_async

from gateway.db import connections_refresh
from gateway.keys import KeyInfo
from gateway.limits.store import (
    LOCAL,
    NANO,
    SPEND_TTL_S,
    cache_backend,
    counter_keys,
    period_bounds,
    redis_url,
    utcnow,
)
from metrics.selectors.records import api_key_spend_recorded


def spend_from_records(*, api_key_id: int, since: datetime, until: datetime | None = None) -> Decimal:
    return api_key_spend_recorded(api_key_id=api_key_id, since=since, until=until)


def _seed_spend(api_key_id: int, since: datetime, until: datetime) -> Decimal:
    connections_refresh()
    return spend_from_records(api_key_id=api_key_id, since=since, until=until)


spend_recorded_async = sync_to_async(_seed_spend)  # (api_key_id, since, until), off the event loop


def spend_current(*, info: KeyInfo, now: datetime | None = None) -> Decimal:
    """Spend in the key's current period: the counter, or the records when it is cold (sync)."""
    now = now or utcnow()
    key = counter_keys(info, now)["spend"]
    value = cache_backend().get(key) if redis_url() else LOCAL.spend_get(key)
    if value is None:
        start, end = period_bounds(info.budget_period, now)
        spent = spend_from_records(api_key_id=info.id, since=start, until=end)
        _spend_seed_sync(key, int(spent * NANO))
        return spent
    return Decimal(int(value)) / NANO


def _spend_seed_sync(key: str, nano: int) -> None:
    if redis_url():
        cache_backend().add(key, nano, SPEND_TTL_S)
    else:
        LOCAL.spend_seed(key, nano, SPEND_TTL_S)
