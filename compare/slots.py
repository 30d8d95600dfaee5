"""Bounded concurrency per provider across every worker: a counting semaphore in the cache.

Each pool has N slot keys; taking a slot is an atomic `cache.add` (SET NX on Redis) with an
expiry. In a Celery worker the expiry is a short lease that the worker's renewal thread
keeps pushing back (compare.leases), so a worker killed while holding slots frees them within
seconds; elsewhere (eager mode) it is the cell's whole lease. Without Redis the cache is per
process, which bounds the embedded worker (one process) just the same.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.cache import cache

from compare import leases


def pool_limit(pool: str) -> int:
    overrides: dict[str, int] = getattr(settings, "COMPARE_PROVIDER_CONCURRENCY_OVERRIDES", {})
    return max(1, int(overrides.get(pool, settings.COMPARE_PROVIDER_CONCURRENCY)))


def _key(pool: str, index: int) -> str:
    return f"compare:slot:{pool}:{index}"


def slot_acquire(pool: str, *, lease_s: float) -> str | None:
    """Take a free slot of `pool`; return its handle (to release), or None when all are taken.
    `lease_s` is the expiry when this process does not renew its leases."""
    token = uuid.uuid4().hex
    renewed = leases.renewing()
    ttl = leases.lease_ttl_s() if renewed else lease_s
    for index in range(pool_limit(pool)):
        key = _key(pool, index)
        if cache.add(key, token, timeout=max(1, round(ttl))):
            handle = f"{key}|{token}"
            if renewed:
                leases.slot_hold(handle, ttl)
            return handle
    return None


def slot_release(handle: str | None) -> None:
    if not handle:
        return
    leases.slot_drop(handle)
    key, _, token = handle.partition("|")
    # Only free the slot if it is still ours (it may have lapsed and been taken by another).
    if cache.get(key) == token:
        cache.delete(key)


def slots_in_use(pool: str) -> int:
    return sum(1 for index in range(pool_limit(pool)) if cache.get(_key(pool, index)) is not None)
