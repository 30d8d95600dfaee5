"""Where the counters live: the cache backend, the Redis client behind it, or the process.

`cache_backend()` is made once per process; `redis_client()` is the pipelined asyncio client
for the Redis behind it (None when the cache is not Redis: the counters are kept in process,
in `LOCAL`). The counters' key names and the Lua scripts that change them are here too.
"""

from __future__ import annotations

import hashlib
from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache
from django.core.signals import setting_changed
from django.dispatch import receiver

from gateway.keys import KeyInfo
from gateway.limits import window
from gateway.limits.window import LocalLimits
from gateway.redis_client import AsyncRedis, RedisReplyError, async_redis
from routing.cache_guard import redis_timeout_s
from routing.shared_cache import shared_cache

NANO = Decimal("1000000000")
SPEND_TTL_S = 300  # re-seed spend from the records at least this often

LOCAL = LocalLimits()  # the counters when the cache is not Redis (`make run`)
# Settlements skipped while Redis was in the cache guard's back-off, oldest first, as
# (info, admission, tokens, cost_usd, now); bounded: an outage longer than this many calls
# leaves the oldest reservations to their TTL.
UNSETTLED_MAX = 10_000
UNSETTLED: deque[tuple[Any, ...]] = deque(maxlen=UNSETTLED_MAX)


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


def reservation_ttl_ms() -> int:
    return int(float(settings.ORCHESTRATOR.get("GATEWAY_RESERVATION_TTL_S", 120)) * 1000)


# The counters an admission and a settlement touch, in the order the scripts take them.
ADMIT_NAMES = ("rpm", "tpm", "spend", "held_until", "held", "largest", "tpm_sum")
SETTLE_NAMES = ("tpm", "spend", "held_until", "held", "largest", "tpm_sum")
_MADE_MAX = 10_000
# (key id, budget period, UTC day) -> the counters' names, and the cache's keys for the scripts
_made: dict[tuple[int, str, float], tuple[dict[str, str], list[str], list[str]]] = {}


def counter_keys_made(info: KeyInfo, now: datetime) -> tuple[dict[str, str], list[str], list[str]]:
    """`counter_keys`, and the cache's keys for the admission and the settlement scripts
    (`ADMIT_NAMES`, `SETTLE_NAMES` order), made once per key and UTC day."""
    memo = (info.id, info.budget_period, now.timestamp() // 86400)
    made = _made.get(memo)
    if made is None:
        names = counter_keys(info, now)
        make_key = cache_backend().make_key
        made = (names, [make_key(names[n]) for n in ADMIT_NAMES], [make_key(names[n]) for n in SETTLE_NAMES])
        if len(_made) >= _MADE_MAX:
            _made.clear()
        _made[memo] = made
    return made


def counter_keys(info: KeyInfo, now: datetime) -> dict[str, str]:
    """The names of a key's counters (the spend counter's name carries its period)."""
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


def cache_backend() -> BaseCache:
    """The cache backend, one per process (`routing.shared_cache`)."""
    return shared_cache()


# The Redis URL behind the backend it was read from (read again when the backend changes).
_redis: tuple[BaseCache, str | None] | None = None


def redis_url() -> str | None:
    """The Redis the counters live in (None: they are kept in process)."""
    global _redis
    backend = shared_cache()
    if _redis is None or _redis[0] is not backend:
        url = None
        if isinstance(backend, RedisCache):
            location = settings.CACHES["default"]["LOCATION"]
            servers = location if isinstance(location, list | tuple) else str(location).split(",")
            first = servers[0].strip()
            # redis:// and rediss:// get the pipelined client and the scripts; anything else
            # (unix sockets…) counts in process, like a server without Redis.
            url = first if first.startswith(("redis://", "rediss://")) else None
        _redis = (backend, url)
    return _redis[1]


def redis_client() -> AsyncRedis | None:
    """A pipelined asyncio client for the Redis behind the cache (None: not Redis)."""
    url = redis_url()
    return async_redis(url, timeout_s=redis_timeout_s()) if url else None


@receiver(setting_changed)
def _reset_cache(*, setting: str, **kwargs: Any) -> None:
    global _redis
    if setting == "CACHES":
        _made.clear()
        _redis = None
        LOCAL.clear()
        UNSETTLED.clear()


def limits_local_reset() -> None:
    """Forget the in-process counters (tests)."""
    LOCAL.clear()


class Script:
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


ADMIT_SCRIPT = Script(window.ADMIT_LUA)
SETTLE_SCRIPT = Script(window.SETTLE_LUA)
