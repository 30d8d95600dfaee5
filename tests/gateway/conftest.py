"""Gateway test helpers: API keys made through the service, a clean cache per test."""

import copy
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway import services
from gateway.keys import key_cache_clear
from gateway.models import ApiKey
from gateway.services import api_key_create


@pytest.fixture(autouse=True)
def _fresh_gateway_state(settings) -> Iterator[None]:
    """Counters under a key prefix of this test's own (never cache.clear(): on a shared Redis
    that would flush other test runs' data), and an empty key-lookup cache."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"{caches['default'].get('KEY_PREFIX', '')}:{uuid.uuid4().hex[:10]}"
    settings.CACHES = caches
    key_cache_clear()
    services._last_used_written.clear()  # key ids repeat across tests
    yield
    key_cache_clear()


@pytest.fixture
def make_key(db) -> Callable[..., tuple[ApiKey, str]]:
    def make(name: str = "app", **kwargs: Any) -> tuple[ApiKey, str]:
        return api_key_create(name=name, **kwargs)

    return make


@pytest.fixture
def api_key(make_key) -> tuple[ApiKey, str]:
    return make_key("default-app")


def bearer(raw: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
