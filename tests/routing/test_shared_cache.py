"""The shared cache is one backend per process, whatever asyncio context asks for it."""

import asyncio

import pytest

from routing.engine import breaker
from routing.shared_cache import shared_cache

REDIS = "redis://127.0.0.1:6379/0"


def connections_made() -> int:
    """Connections the shared backend's redis-py pools have opened."""
    pools = shared_cache()._cache._pools.values()  # type: ignore[attr-defined]
    return sum(pool._created_connections for pool in pools)


def test_every_asyncio_context_gets_the_same_backend():
    async def backend_of_a_task():
        return shared_cache()

    async def run():
        return await asyncio.gather(*(asyncio.ensure_future(backend_of_a_task()) for _ in range(5)))

    assert {id(b) for b in asyncio.run(run())} == {id(shared_cache())}


def test_a_change_of_caches_makes_a_new_backend(settings):
    before = shared_cache()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert shared_cache() is not before


@pytest.mark.django_db
def test_breaker_refreshes_in_many_requests_share_one_redis_connection(settings, monkeypatch):
    """Each gateway request runs in an asyncio context of its own; the breaker's refresh of
    its in-process copy used to open a new connection pool (a new TCP connection, made on the
    event loop) in every one of them."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS}
    }
    monkeypatch.setattr(breaker, "MEMO_TTL_S", 0)  # every call refreshes from Redis

    async def request():
        return breaker.breaker_is_open("shared-cache-probe")

    async def run():
        return await asyncio.gather(*(asyncio.ensure_future(request()) for _ in range(20)))

    assert asyncio.run(run()) == [False] * 20
    assert asyncio.run(run()) == [False] * 20
    assert connections_made() == 1
