"""The shared cache (Django's default cache, Redis in production) as one backend per process.

`django.core.cache.cache` resolves to a backend per asyncio context, so on the event loop
every request that touches it makes a new backend, and for Redis a new connection pool and a
new TCP connection, synchronously, on the loop (seen as ~2 % of a streaming gateway's CPU
from the circuit breaker's refreshes alone, and as stalls in its tail). The backends in use
here (Redis through redis-py's thread-safe pool, locmem behind its lock, the database) are
safe to share across threads and tasks, so the engine's breaker and configuration check and
the gateway's counters use this one, made on first use; a change of CACHES (tests) makes a
new one. A forked child gets new Redis connections from redis-py's pool itself.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__ = ["shared_cache"]

_backend: BaseCache | None = None


def shared_cache() -> BaseCache:
    """The default cache's backend, made once per process."""
    global _backend
    backend = _backend
    if backend is None:
        backend = _backend = caches.create_connection("default")
    return backend


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    global _backend
    if setting == "CACHES":
        _backend = None
