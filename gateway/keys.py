"""API key material: generation, hashing, and the per-process lookup cache.

A key is `ork-` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 is
stored; lookups go by hash (a unique index), so no secret is ever compared byte by byte.
The first 12 characters are kept as the display prefix.

Lookups are cached in each process for `GATEWAY_KEY_CACHE_S` seconds (default 5): the
database is read once per key per process per interval, not on every request. Revoking a
key clears this process's cache at once; other processes notice within that interval.

When the database cannot answer (down, or slower than `GATEWAY_KEY_DB_TIMEOUT_S`), a key
this process has seen keeps its last answer for up to `GATEWAY_KEY_STALE_S` (default 300 s)
after it was read; a key never seen raises `KeyLookupUnavailable` (the gateway answers 503
with retry-after). One database read per key runs at a time; requests for the same key
share it, and a read that hangs is left running in its own thread, never in the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.conf import settings

from gateway.db import connections_refresh
from gateway.models import ApiKey

log = logging.getLogger("gateway.keys")

KEY_PREFIX = "ork-"
DISPLAY_PREFIX_LEN = 12
_MAX_CACHED = 10_000


@dataclass(frozen=True)
class KeyInfo:
    """What a request needs to know about its key (a snapshot; no database access)."""

    id: int
    name: str
    prefix: str
    budget_usd: Decimal | None
    budget_period: str
    rpm: int | None
    tpm: int | None
    allowed: frozenset[str]

    @classmethod
    def from_model(cls, key: ApiKey) -> KeyInfo:
        allowed = key.allowed if isinstance(key.allowed, list) else []
        return cls(
            id=key.pk,
            name=key.name,
            prefix=key.prefix,
            budget_usd=key.budget_usd,
            budget_period=key.budget_period,
            rpm=key.rpm,
            tpm=key.tpm,
            allowed=frozenset(str(a).strip() for a in allowed if str(a).strip()),
        )

    def allows(self, target: str) -> bool:
        """`target` is what the caller asked for: `gpt-4o`, `route:code_review`, `chain:default`.
        An empty allow-list allows everything; `route:*` / `chain:*` / `model:*` allow a kind."""
        if not self.allowed or target in self.allowed:
            return True
        kind = target.split(":", 1)[0] if target.startswith(("route:", "chain:")) else "model"
        return f"{kind}:*" in self.allowed


def key_generate() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def key_display_prefix(raw: str) -> str:
    return raw[:DISPLAY_PREFIX_LEN]


class KeyLookupUnavailable(Exception):
    """The database cannot say whether this (never seen) key is valid right now."""

    retry_after_s = 5


def _conf(name: str, default: float) -> float:
    return float(settings.ORCHESTRATOR.get(name, default))


def _cache_ttl() -> float:
    return _conf("GATEWAY_KEY_CACHE_S", 5)


# hash -> (KeyInfo or None for "no such active key", fresh until, usable until; monotonic)
_cache: dict[str, tuple[KeyInfo | None, float, float]] = {}
_reading: dict[tuple[int, str], asyncio.Future[KeyInfo | None]] = {}  # (event loop, hash)
_outage_logged_at = 0.0


def key_cache_clear() -> None:
    _cache.clear()


def _load(hashed: str) -> KeyInfo | None:
    connections_refresh()
    key = ApiKey.objects.filter(key_hash=hashed, revoked_at__isnull=True).first()
    return KeyInfo.from_model(key) if key is not None else None


def _log_outage(exc: BaseException | None) -> None:
    global _outage_logged_at
    now = time.monotonic()
    if now - _outage_logged_at >= 60:
        _outage_logged_at = now
        log.warning(
            "API keys cannot be read from the database (%s): known keys are served from the cache "
            "for up to %ss, unknown keys get 503",
            "timed out" if exc is None else type(exc).__name__,
            _conf("GATEWAY_KEY_STALE_S", 300),
            exc_info=exc,
        )


_aload = sync_to_async(_load)


async def _read(hashed: str) -> KeyInfo | None:
    """One database read for `hashed` at a time, bounded by GATEWAY_KEY_DB_TIMEOUT_S."""
    slot = (id(asyncio.get_running_loop()), hashed)
    future = _reading.get(slot)
    if future is None:
        future = _reading[slot] = asyncio.ensure_future(_aload(hashed))

        def done(read: asyncio.Future[KeyInfo | None]) -> None:
            _reading.pop(slot, None)
            if not read.cancelled():
                read.exception()  # retrieved: a late failure is not "never retrieved"

        future.add_done_callback(done)
    return await asyncio.wait_for(asyncio.shield(future), _conf("GATEWAY_KEY_DB_TIMEOUT_S", 1.0))


async def key_lookup(raw: str) -> KeyInfo | None:
    """The active key for a raw bearer token, or None (unknown, malformed or revoked).
    Raises KeyLookupUnavailable when the database is down and the key was never seen."""
    if not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        return None
    hashed = key_hash(raw)
    now = time.monotonic()
    hit = _cache.get(hashed)
    if hit is not None and hit[1] > now:
        return hit[0]
    usable = hit is not None and hit[2] > now
    if usable and (id(asyncio.get_running_loop()), hashed) in _reading:
        return hit[0] if hit is not None else None  # a read is under way: don't queue behind it
    try:
        info = await _read(hashed)
    except Exception as exc:  # the database is down or hangs
        _log_outage(None if isinstance(exc, TimeoutError) else exc)
        if hit is not None and usable:
            # Serve the last answer; ask the database again in a second, not on every request.
            _cache[hashed] = (hit[0], now + 1.0, hit[2])
            return hit[0]
        raise KeyLookupUnavailable from exc
    if len(_cache) >= _MAX_CACHED:
        _cache.clear()
    now = time.monotonic()
    _cache[hashed] = (info, now + _cache_ttl(), now + _conf("GATEWAY_KEY_STALE_S", 300))
    return info
