"""API key material: generation, hashing, and the per-process lookup cache.

A key is `ork-` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 is
stored; lookups go by hash (a unique index), so no secret is ever compared byte by byte.
The first 12 characters are kept as the display prefix.

Lookups are cached in each process for `GATEWAY_KEY_CACHE_S` seconds (default 5): the
database is read once per key per process per interval, not on every request. Revoking a
key clears this process's cache at once; other processes notice within that interval.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.conf import settings

from gateway.db import connections_refresh
from gateway.models import ApiKey

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


def _cache_ttl() -> float:
    return float(settings.ORCHESTRATOR.get("GATEWAY_KEY_CACHE_S", 5))


# hash -> (KeyInfo or None for "no such active key", expiry on the monotonic clock)
_cache: dict[str, tuple[KeyInfo | None, float]] = {}


def key_cache_clear() -> None:
    _cache.clear()


def _load(hashed: str) -> KeyInfo | None:
    connections_refresh()
    key = ApiKey.objects.filter(key_hash=hashed, revoked_at__isnull=True).first()
    return KeyInfo.from_model(key) if key is not None else None


_aload = sync_to_async(_load)


async def key_lookup(raw: str) -> KeyInfo | None:
    """The active key for a raw bearer token, or None (unknown, malformed or revoked)."""
    if not raw.startswith(KEY_PREFIX) or len(raw) > 200:
        return None
    hashed = key_hash(raw)
    now = time.monotonic()
    hit = _cache.get(hashed)
    if hit is not None and hit[1] > now:
        return hit[0]
    info = await _aload(hashed)
    if len(_cache) >= _MAX_CACHED:
        _cache.clear()
    _cache[hashed] = (info, now + _cache_ttl())
    return info
