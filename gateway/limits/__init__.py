"""Per-key rate limits and budgets, shared across processes through Redis.

`limits_admit` checks and reserves rpm, tpm and budget together before a call: with Redis
that is one round trip (one Lua script, `window.ADMIT_LUA`); `limits_account` settles the
reservation with the real tokens and cost after the call (one more script, run after the
response is sent). rpm is a sliding-window log and spend a nano-dollar counter per period,
seeded from the call records (the source of truth) when it is cold or older than
SPEND_TTL_S. The rule is described in `gateway.limits.window`; without Redis the same rule
runs in process (`LocalLimits`), exact for one server process (`make run`).

If Redis cannot be reached (or stalls past REDIS_TIMEOUT_MS) the request is admitted
unchecked: an outage of the counters' store does not take the gateway down with it. The
outage is logged once, then once a minute (`routing.cache_guard`).
Functions that depend on the time take `now`, so tests move the clock instead of sleeping.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed
from django.dispatch import receiver

from gateway.db import connections_refresh
from gateway.errors import GatewayError
from gateway.keys import KeyInfo
from gateway.limits import window
from gateway.limits.window import ADMITTED, BUDGET, COLD, RPM, LocalLimits, Verdict
from gateway.redis_client import AsyncRedis, RedisReplyError, async_redis
from metrics.selectors.records import api_key_spend_recorded
from routing.cache_guard import cache_failed, cache_recovered, cache_usable, redis_timeout_s

log = logging.getLogger("gateway.limits")

NANO = Decimal("1000000000")
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


def _reservation_ttl_ms() -> int:
    return int(float(settings.ORCHESTRATOR.get("GATEWAY_RESERVATION_TTL_S", 120)) * 1000)


def _keys(info: KeyInfo, now: datetime) -> dict[str, str]:
    start, _ = period_bounds(info.budget_period, now)
    return {
        "rpm": f"gw:rpm:{info.id}",
        "tpm": f"gw:tpm:{info.id}",
        "tpm_sum": f"gw:tpm-sum:{info.id}",
        "spend": f"gw:spend:{info.id}:{start:%Y%m%d}",
        "held_until": f"gw:held-until:{info.id}",
        "held": f"gw:held:{info.id}",
        "largest": f"gw:largest:{info.id}",
    }


_backend: BaseCache | None = None
_redis_url: str | None = None
_local = LocalLimits()


def _cache() -> BaseCache:
    """The cache backend, made once per process. (`django.core.cache.cache` makes a new
    backend, and for Redis a new connection pool, in every asyncio context: every request.)"""
    global _backend, _redis_url
    if _backend is None:
        backend = caches.create_connection("default")
        if isinstance(backend, RedisCache):
            location = settings.CACHES["default"]["LOCATION"]
            servers = location if isinstance(location, list | tuple) else str(location).split(",")
            url = servers[0].strip()
            # redis:// and rediss:// get the pipelined client and the scripts; anything else
            # (unix sockets…) counts in process, like a server without Redis.
            _redis_url = url if url.startswith(("redis://", "rediss://")) else None
        else:
            _redis_url = None
        _backend = backend
    return _backend


def _redis() -> AsyncRedis | None:
    """A pipelined asyncio client for the Redis behind the cache (None: not Redis)."""
    _cache()
    return async_redis(_redis_url, timeout_s=redis_timeout_s()) if _redis_url else None


@receiver(setting_changed)
def _reset_cache(*, setting: str, **kwargs: Any) -> None:
    global _backend, _redis_url
    if setting == "CACHES":
        _backend = None
        _redis_url = None
        _local.clear()


def limits_local_reset() -> None:
    """Forget the in-process counters (tests)."""
    _local.clear()


class _Script:
    """A Lua script run with EVALSHA (EVAL once if Redis does not know it yet)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client: AsyncRedis, keys: list[str], args: list[Any]) -> Any:
        try:
            (reply,) = await client.pipeline([("EVALSHA", self.sha, len(keys), *keys, *args)])
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            (reply,) = await client.pipeline([("EVAL", self.source, len(keys), *keys, *args)])
        return reply


_admit_script = _Script(window.ADMIT_LUA)
_settle_script = _Script(window.SETTLE_LUA)


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
    _cache()
    value = _cache().get(key) if _redis_url else _local.spend_get(key)
    if value is None:
        start, end = period_bounds(info.budget_period, now)
        spent = spend_from_records(api_key_id=info.id, since=start, until=end)
        _spend_seed_sync(key, int(spent * NANO))
        return spent
    return Decimal(int(value)) / NANO


def _spend_seed_sync(key: str, nano: int) -> None:
    if _redis_url:
        _cache().add(key, nano, SPEND_TTL_S)
    else:
        _local.spend_seed(key, nano, SPEND_TTL_S)


# -- Before a call -----------------------------------------------------------------------


@dataclass
class Admission:
    """What the pre-call check reserved; the post-call accounting settles it."""

    keys: dict[str, str]
    spent_usd: Decimal | None
    checked: bool = True  # False: the cache was unreachable and the request went unchecked
    request_id: str = ""
    reserved: bool = False  # a reservation waits to be settled by limits_account
    settled: bool = field(default=False, repr=False)


def _nano(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount * NANO)


async def limits_admit(
    *,
    info: KeyInfo,
    now: datetime | None = None,
    estimate_usd: Decimal | None = None,
    estimate_tokens: int | None = None,
) -> Admission:
    """Check and reserve this request against the key's rpm, tpm and budget; refuse (429)
    when one is reached. `estimate_*`: the request's expected cost and tokens, if the caller
    knows them (else the key's largest settled request is reserved). Keys without limits or
    budget cost nothing here.

    If the cache (Redis) cannot be reached the request is admitted unchecked (logged once per
    outage): an outage of the counters' store does not take the gateway down with it."""
    if info.rpm is None and info.tpm is None and info.budget_usd is None:
        return Admission(keys={}, spent_usd=None)
    client = _redis()
    if client is not None and not cache_usable():
        return Admission(keys={}, spent_usd=None, checked=False)
    try:
        admission = await _admit(
            info=info,
            now=now or utcnow(),
            client=client,
            est_nano=_nano(estimate_usd),
            est_tokens=estimate_tokens,
        )
    except GatewayError:
        raise
    except Exception as exc:
        if client is None:
            raise
        cache_failed(
            what=f"rate limits and budget of key {info.name!r} unchecked: the cache is unavailable", exc=exc
        )
        return Admission(keys={}, spent_usd=None, checked=False)
    if client is not None:
        cache_recovered()
    return admission


async def _admit(
    *, info: KeyInfo, now: datetime, client: AsyncRedis | None, est_nano: int | None, est_tokens: int | None
) -> Admission:
    keys = _keys(info, now)
    request_id = secrets.token_hex(8)
    budget_nano = _nano(info.budget_usd)
    now_ms = now.timestamp() * 1000
    for _ in range(3):  # a cold spend counter: seed it from the records, then check again
        if client is not None:
            cache = _cache()
            names = ("rpm", "tpm", "spend", "held_until", "held", "largest", "tpm_sum")
            reply = await _admit_script(
                client,
                [cache.make_key(keys[n]) for n in names],
                [
                    int(now_ms),
                    request_id,
                    -1 if info.rpm is None else info.rpm,
                    -1 if info.tpm is None else info.tpm,
                    -1 if budget_nano is None else budget_nano,
                    -1 if est_nano is None else est_nano,
                    -1 if est_tokens is None else est_tokens,
                    _reservation_ttl_ms(),
                    window.WINDOW_MS,
                    window.MAX_TTL_S,
                ],
            )
            verdict = window.verdict_from_reply(reply)
        else:
            verdict = _local.admit(
                key_id=info.id,
                spend_key=keys["spend"],
                now_ms=now_ms,
                request_id=request_id,
                rpm=info.rpm,
                tpm=info.tpm,
                budget_nano=budget_nano,
                est_nano=est_nano,
                est_tokens=est_tokens,
                ttl_ms=_reservation_ttl_ms(),
            )
        if verdict.outcome != COLD:
            break
        start, end = period_bounds(info.budget_period, now)
        spent = await _aseed_spend(info.id, start, end)
        if client is not None:
            await client.pipeline(
                [("SET", _cache().make_key(keys["spend"]), int(spent * NANO), "NX", "EX", SPEND_TTL_S)]
            )
        else:
            _local.spend_seed(keys["spend"], int(spent * NANO), SPEND_TTL_S)
    else:
        raise RuntimeError("the spend counter stayed cold after seeding")
    _refuse_unless_admitted(info, verdict, now)
    spent_usd = Decimal(verdict.spent_nano) / NANO if info.budget_usd is not None else None
    reserved = info.budget_usd is not None or info.tpm is not None
    return Admission(keys=keys, spent_usd=spent_usd, request_id=request_id, reserved=reserved)


def _refuse_unless_admitted(info: KeyInfo, verdict: Verdict, now: datetime) -> None:
    if verdict.outcome == ADMITTED:
        return
    retry = str(max(1, -(-verdict.retry_ms // 1000)))
    if verdict.outcome == RPM:
        raise GatewayError(
            429,
            f"Rate limit reached for key {info.name!r}: {info.rpm} requests per minute. Retry after {retry} s.",
            code="rate_limit_exceeded",
            headers={"retry-after": retry},
        )
    if verdict.outcome == BUDGET:
        spent = Decimal(verdict.spent_nano) / NANO
        assert info.budget_usd is not None
        if verdict.in_flight:
            raise GatewayError(
                429,
                f"Budget of key {info.name!r} is held by requests in flight: spent {spent:.4f} of "
                f"{info.budget_usd:.4f} USD this {info.budget_period}, the rest reserved. Retry after {retry} s.",
                code="budget_exceeded",
                headers={"retry-after": retry},
            )
        _, end = period_bounds(info.budget_period, now)
        retry = str(max(1, int((end - now).total_seconds())))
        raise GatewayError(
            429,
            f"Budget exhausted for key {info.name!r}: spent {spent:.4f} of {info.budget_usd:.4f} USD "
            f"this {info.budget_period} (UTC). It resets at {end:%Y-%m-%d %H:%M} UTC.",
            code="budget_exceeded",
            headers={"retry-after": retry},
        )
    held = " (the rest is reserved by requests in flight)" if verdict.in_flight else ""
    raise GatewayError(
        429,
        f"Rate limit reached for key {info.name!r}: {info.tpm} tokens per minute{held}. Retry after {retry} s.",
        code="tokens_rate_limit_exceeded",
        headers={"retry-after": retry},
    )


# -- After a call ------------------------------------------------------------------------


async def limits_account(
    *, info: KeyInfo, admission: Admission, tokens: int, cost_usd: Decimal | None, now: datetime | None = None
) -> None:
    """Settle the request's reservation with its real tokens and cost (0 and None for a call
    that failed); raise budget alerts. Call it once per admission, success or not: an
    unsettled reservation holds its share of the limits until GATEWAY_RESERVATION_TTL_S.
    Never raises: accounting must not fail a call that succeeded (errors are logged)."""
    if not admission.reserved or not admission.checked or admission.settled:
        return
    admission.settled = True
    client = _redis()
    if client is not None and not cache_usable():
        return
    try:
        await _account(
            info=info,
            admission=admission,
            tokens=tokens,
            cost_usd=cost_usd,
            now=now or utcnow(),
            client=client,
        )
    except Exception as exc:
        if client is not None:
            cache_failed(what=f"usage of a call to key {info.name!r} not counted", exc=exc)
        else:
            log.error("could not add a call's usage to the counters of key %r", info.name, exc_info=True)


async def _account(
    *,
    info: KeyInfo,
    admission: Admission,
    tokens: int,
    cost_usd: Decimal | None,
    now: datetime,
    client: AsyncRedis | None,
) -> None:
    nano = int((cost_usd or Decimal(0)) * NANO)
    now_ms = now.timestamp() * 1000
    keys = admission.keys
    if client is not None:
        cache = _cache()
        names = ("tpm", "spend", "held_until", "held", "largest", "tpm_sum")
        total = await _settle_script(
            client,
            [cache.make_key(keys[n]) for n in names],
            [
                int(now_ms),
                admission.request_id,
                max(0, int(tokens)),
                max(0, nano),
                window.WINDOW_MS,
                window.MAX_TTL_S,
                "1" if info.tpm is not None else "0",
                "1" if info.budget_usd is not None else "0",
            ],
        )
        spent_nano = None if total is None else int(total)
    else:
        spent_nano = _local.settle(
            key_id=info.id,
            spend_key=keys["spend"],
            now_ms=now_ms,
            request_id=admission.request_id,
            tokens=max(0, int(tokens)),
            nano=max(0, nano),
            has_tpm=info.tpm is not None,
            has_budget=info.budget_usd is not None,
        )
    if info.budget_usd is None or spent_nano is None:
        return
    spent = Decimal(spent_nano) / NANO
    if info.budget_usd > 0 and spent * 100 >= info.budget_usd * ALERT_THRESHOLDS[0]:
        await budget_alerts_check(info=info, spent_usd=spent, now=now)


async def budget_alerts_check(*, info: KeyInfo, spent_usd: Decimal, now: datetime) -> None:
    from gateway.services import budget_alert_raise

    assert info.budget_usd is not None
    start, _ = period_bounds(info.budget_period, now)
    for threshold in ALERT_THRESHOLDS:
        if spent_usd * 100 < info.budget_usd * threshold:
            break
        # One process raises each alert; the unique constraint settles any race.
        if await sync_to_async(_cache().add)(
            f"gw:alert:{info.id}:{start:%Y%m%d}:{threshold}", 1, 40 * 24 * 3600
        ):
            await sync_to_async(budget_alert_raise)(
                api_key_id=info.id, period_start=start, threshold=threshold, spent_usd=spent_usd
            )
