"""Shared fixtures: the three users every view test needs (healthchecks' owner/teammate/outsider)."""

import pytest
from django.test import Client

from tests.factories import UserFactory


@pytest.fixture
def staff_user(db):
    return UserFactory(username="alice", is_staff=True, is_superuser=True)


@pytest.fixture
def member_user(db):
    """Logged-in teammate without staff rights: can use the tools, cannot edit routing."""
    return UserFactory(username="bob")


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def member_client(member_user) -> Client:
    client = Client()
    client.force_login(member_user)
    return client


@pytest.fixture(autouse=True)
def _engine_state_reset():
    """The engine keeps state in-process and in the cache (config snapshot, circuit breakers,
    measured latency, unwritten call records): every test starts with none of it."""
    from routing.engine.reset import engine_reset

    engine_reset()
    yield


from tests.browser import _browser, live_url, page  # noqa: E402,F401  (browser fixtures, shared)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Run real-browser tests last (after pytest-randomly's shuffle, keeping its order within
    each group): Playwright's sync API leaves an event loop running in the test thread for
    the rest of the session, which would break asyncio.run()/async_to_sync in later tests."""
    items.sort(key=lambda item: "page" in getattr(item, "fixturenames", ()))


from tests.fake_provider import fake_provider_fixture  # noqa: E402,F401  (the fake LLM provider server)
from tests.owned_services import owned_postgres, owned_redis  # noqa: E402,F401  (servers a test can stall)
