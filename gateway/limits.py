"""Per-key rate limits and budgets, shared across processes through the Django cache.

Counters live in fixed windows keyed by time (`…:rpm:<key id>:<minute>`), so they need no
clean-up and every process sees the same numbers when the cache is Redis. With Redis the
checks of one request cost one round trip (a pipeline); with the local-memory cache they are
per process (fine for one server process, documented for production).

Spend per key per period is a counter of nano-dollars, incremented after each call and
seeded from the call records (the source of truth) when the cache is cold or expired.
Functions that depend on the time take `now`, so tests move the clock instead of sleeping.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import setting_changed
from django.dispatch import receiver

from gateway.db import connections_refresh
from gateway.errors import GatewayError
from gateway.keys import KeyInfo
from gateway.redis_client import AsyncRedis, async_redis
from metrics.selectors.records import api_key_spend_recorded

log = logging.getLogger("gateway.limits")

NANO = Decimal("1000000000")
WINDOW_TTL_S = 120
SPEND_TTL_S = 300  # re-seed spend from the records at least this often
ALERT_THRESHOLDS = (80, 100)


def utcnow() -> datetime:
    return datetime.now(UTC)


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the budget period (UTC calendar day or month) containing `now`."""
    now = now.astimezone(UTC)
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def _minute(now: datetime) -> int:
    return int(now.timestamp()) // 60


def _keys(info: KeyInfo, now: datetime) -> dict[str, str]:
    minute = _minute(now)
    start, _ = period_bounds(info.budget_period, now)
    return {
        "rpm": f"gw:rpm:{info.id}:{minute}",
        "tpm": f"gw:tpm:{info.id}:{minute}",
        "spend": f"gw:spend:{info.id}:{start:%Y%m%d}",
    }


_backend: BaseCache | None = None
_redis_url: str | None = None


def _cache() -> BaseCache:
    """The cache backend, made once per process. (`django.core.cache.cache` makes a new
    backend, and for Redis a new connection pool, in every asyncio context: every request.)"""
    global _backend, _redis_url
    if _backend is None:
        from django.conf import settings
        from django.core.cache.backends.redis import RedisCache

        backend = caches.create_connection("default")
        if isinstance(backend, RedisCache):
            location = settings.CACHES["default"]["LOCATION"]
            servers = location if isinstance(location, list | tuple) else str(location).split(",")
            url = servers[0].strip()
            # redis:// and rediss:// get the pipelined client; anything else (unix sockets…)
            # goes through Django's cache API, which handles every form Django accepts.
            _redis_url = url if url.startswith(("redis://", "rediss://")) else None
        else:
            _redis_url = None
        _backend = backend
    return _backend


def _redis() -> AsyncRedis | None:
    """A pipelined asyncio client for the Redis behind the cache (None: not Redis)."""
    _cache()
    return async_redis(_redis_url) if _redis_url else None


@receiver(setting_changed)
def _reset_cache(*, setting: str, **kwargs: Any) -> None:
    global _backend, _redis_url
    if setting == "CACHES":
        _backend = None
        _redis_url = None


def _incr(key: str, amount: int, ttl: int) -> int:
    """Atomic add-then-increment on any cache backend."""
    _cache().add(key, 0, ttl)
    try:
        return _cache().incr(key, amount)
    except ValueError:  # expired between add and incr
        _cache().add(key, amount, ttl)
        return amount


# -- Spend from the records (source of truth) ------------------------------------------


def spend_from_records(*, api_key_id: int, since: datetime, until: datetime | None = None) -> Decimal:
    return api_key_spend_recorded(api_key_id=api_key_id, since=since, until=until)


def _seed_spend(api_key_id: int, since: datetime, until: datetime) -> Decimal:
    connections_refresh()
    return spend_from_records(api_key_id=api_key_id, since=since, until=until)


_aseed_spend = sync_to_async(_seed_spend)


def spend_current(*, info: KeyInfo, now: datetime | None = None) -> Decimal:
    """Spend in the key's current period: the counter, or the records when it is cold (sync)."""
    now = now or utcnow()
    key = _keys(info, now)["spend"]
    value = _cache().get(key)
    if value is None:
        start, end = period_bounds(info.budget_period, now)
        spent = spend_from_records(api_key_id=info.id, since=start, until=end)
        _cache().add(key, int(spent * NANO), SPEND_TTL_S)
        return spent
    return Decimal(int(value)) / NANO


# -- Before a call -----------------------------------------------------------------------


@dataclass
class Admission:
    """What the pre-call check saw; the post-call accounting reuses its window keys."""

    keys: dict[str, str]
    spent_usd: Decimal | None
    checked: bool = True  # False: the cache was unreachable and the request went unchecked


async def limits_admit(*, info: KeyInfo, now: datetime | None = None) -> Admission:
    """Count this request against the key's rpm and refuse (429) when a limit or the budget
    is reached. Keys without limits or budget cost nothing here.

    If the cache (Redis) cannot be reached the request is admitted unchecked and the error
    logged: an outage of the counters' store does not take the gateway down with it."""
    try:
        return await _admit(info=info, now=now)
    except GatewayError:
        raise
    except Exception:
        log.error(
            "rate limits and budget of key %r unchecked: the cache is unavailable", info.name, exc_info=True
        )
        return Admission(keys={}, spent_usd=None, checked=False)


async def _admit(*, info: KeyInfo, now: datetime | None) -> Admission:
    now = now or utcnow()
    keys = _keys(info, now)
    if info.rpm is None and info.tpm is None and info.budget_usd is None:
        return Admission(keys=keys, spent_usd=None)
    requests = tokens = spend = None
    client = _redis()
    if client is not None:
        cache = _cache()
        commands: list[tuple[Any, ...]] = []
        names: list[str | None] = []
        if info.rpm is not None:
            rk = cache.make_key(keys["rpm"])
            commands += [("INCR", rk), ("EXPIRE", rk, WINDOW_TTL_S)]
            names += ["rpm", None]
        if info.tpm is not None:
            commands.append(("GET", cache.make_key(keys["tpm"])))
            names.append("tpm")
        if info.budget_usd is not None:
            commands.append(("GET", cache.make_key(keys["spend"])))
            names.append("spend")
        values = dict(zip(names, await client.pipeline(commands), strict=True))
        requests = values.get("rpm")
        tokens = values.get("tpm")
        spend = values.get("spend")
    else:
        if info.rpm is not None:
            requests = _incr(keys["rpm"], 1, WINDOW_TTL_S)
        if info.tpm is not None:
            tokens = _cache().get(keys["tpm"])
        if info.budget_usd is not None:
            spend = _cache().get(keys["spend"])

    retry_minute = str(60 - int(now.timestamp()) % 60)
    if info.rpm is not None and requests is not None and int(requests) > info.rpm:
        raise GatewayError(
            429,
            f"Rate limit reached for key {info.name!r}: {info.rpm} requests per minute. Retry after {retry_minute} s.",
            code="rate_limit_exceeded",
            headers={"retry-after": retry_minute},
        )
    if info.tpm is not None and tokens is not None and int(tokens) >= info.tpm:
        raise GatewayError(
            429,
            f"Rate limit reached for key {info.name!r}: {info.tpm} tokens per minute. Retry after {retry_minute} s.",
            code="tokens_rate_limit_exceeded",
            headers={"retry-after": retry_minute},
        )
    spent: Decimal | None = None
    if info.budget_usd is not None:
        if spend is None:
            start, end = period_bounds(info.budget_period, now)
            spent = await _aseed_spend(info.id, start, end)
            _cache().add(keys["spend"], int(spent * NANO), SPEND_TTL_S)
        else:
            spent = Decimal(int(spend)) / NANO
        if spent >= info.budget_usd:
            _, end = period_bounds(info.budget_period, now)
            retry = str(max(1, int((end - now).total_seconds())))
            raise GatewayError(
                429,
                f"Budget exhausted for key {info.name!r}: spent {spent:.4f} of {info.budget_usd:.4f} USD "
                f"this {info.budget_period} (UTC). It resets at {end:%Y-%m-%d %H:%M} UTC.",
                code="budget_exceeded",
                headers={"retry-after": retry},
            )
    return Admission(keys=keys, spent_usd=spent)


# -- After a call ------------------------------------------------------------------------


async def limits_account(
    *, info: KeyInfo, admission: Admission, tokens: int, cost_usd: Decimal | None, now: datetime | None = None
) -> None:
    """Add a finished call's tokens and cost to the key's counters; raise budget alerts.
    Never raises: accounting must not fail a call that succeeded (errors are logged)."""
    if (info.tpm is None and info.budget_usd is None) or not admission.checked:
        return
    try:
        await _account(info=info, admission=admission, tokens=tokens, cost_usd=cost_usd, now=now)
    except Exception:
        log.error("could not add a call's usage to the counters of key %r", info.name, exc_info=True)


async def _account(
    *, info: KeyInfo, admission: Admission, tokens: int, cost_usd: Decimal | None, now: datetime | None
) -> None:
    nano = int((cost_usd or Decimal(0)) * NANO)
    spent_nano: int | None = None
    client = _redis()
    if client is not None:
        cache = _cache()
        commands: list[tuple[Any, ...]] = []
        if info.tpm is not None:
            tk = cache.make_key(admission.keys["tpm"])
            commands += [("INCRBY", tk, tokens), ("EXPIRE", tk, WINDOW_TTL_S)]
        if info.budget_usd is not None:
            # Only add to a seeded counter: a missing one is re-seeded from the records.
            sk = cache.make_key(admission.keys["spend"])
            commands += [("SET", sk, 0, "NX", "EX", 1), ("INCRBY", sk, nano)]
        replies = await client.pipeline(commands)
        if info.budget_usd is not None:
            created, total = replies[-2], replies[-1]
            if created is not None:
                # The counter had expired: drop it so the next request seeds it from the records.
                await client.pipeline([("DEL", sk)])
            else:
                spent_nano = int(total)
    else:
        if info.tpm is not None:
            _incr(admission.keys["tpm"], tokens, WINDOW_TTL_S)
        if info.budget_usd is not None and _cache().get(admission.keys["spend"]) is not None:
            try:
                spent_nano = _cache().incr(admission.keys["spend"], nano)
            except ValueError:
                spent_nano = None
    if info.budget_usd is None or spent_nano is None:
        return
    spent = Decimal(spent_nano) / NANO
    if info.budget_usd > 0 and spent * 100 >= info.budget_usd * ALERT_THRESHOLDS[0]:
        await budget_alerts_check(info=info, spent_usd=spent, now=now or utcnow())


async def budget_alerts_check(*, info: KeyInfo, spent_usd: Decimal, now: datetime) -> None:
    from gateway.services import budget_alert_raise

    assert info.budget_usd is not None
    start, _ = period_bounds(info.budget_period, now)
    for threshold in ALERT_THRESHOLDS:
        if spent_usd * 100 < info.budget_usd * threshold:
            break
        # One process raises each alert; the unique constraint settles any race.
        if _cache().add(f"gw:alert:{info.id}:{start:%Y%m%d}:{threshold}", 1, 40 * 24 * 3600):
            await sync_to_async(budget_alert_raise)(
                api_key_id=info.id, period_start=start, threshold=threshold, spent_usd=spent_usd
            )
