"""The registry: kinds → factories, one client per provider spec per event loop."""

from __future__ import annotations

import asyncio

import pytest

from routing.models import KEYLESS_KINDS, Provider, ProviderKind
from routing.pricing import CATALOGUE_PROVIDERS
from routing.providers.base import ProviderSpec
from routing.providers.registry import (
    KINDS,
    PROVIDER_KINDS,
    UnknownProviderKind,
    aclose_clients,
    client_for,
    factory_for,
    kind_choices,
)
from routing.schemas import OPTION_SCHEMAS
from tests.routing.providers.conftest import run


def test_every_kind_with_an_options_schema_has_a_client_package():
    assert set(PROVIDER_KINDS) == set(OPTION_SCHEMAS)
    for kind in PROVIDER_KINDS:
        assert callable(factory_for(kind))


def test_each_kind_is_named_once_and_the_rest_derive_from_its_entry():
    assert [value for value, _ in ProviderKind.choices] == list(KINDS)
    assert Provider._meta.get_field("kind").choices == kind_choices()
    assert {kind: schema.__name__ for kind, schema in OPTION_SCHEMAS.items()} == {
        name: kind.options.__name__ for name, kind in KINDS.items()
    }
    assert CATALOGUE_PROVIDERS == {
        "openai": "openai",
        "azure_openai": "azure",
        "anthropic": "anthropic",
        "gemini": "google",
    }
    assert {"simulated"} == KEYLESS_KINDS


def test_an_unknown_kind_is_refused():
    with pytest.raises(UnknownProviderKind):
        factory_for("carrier-pigeon")


def test_the_same_spec_on_the_same_loop_reuses_its_client(fake_provider):
    spec = fake_provider.spec("openai")
    twin = fake_provider.spec("openai")

    async def twice():
        return client_for(spec), client_for(twin)

    first, second = run(twice())

    assert first is second


def test_each_event_loop_gets_its_own_client(fake_provider):
    spec = fake_provider.spec("anthropic")

    async def one():
        return client_for(spec)

    assert run(one()) is not run(one())


def test_changed_options_replace_the_client():
    spec = ProviderSpec(name="sim", kind="simulated", options={"latency_ms_mean": 0})
    edited = ProviderSpec(name="sim", kind="simulated", options={"latency_ms_mean": 5})

    async def before_and_after():
        old = client_for(spec)
        new = client_for(edited)
        await asyncio.sleep(0)  # let the retired client's close task run
        return old, new

    old, new = run(before_and_after())

    assert old is not new
    assert new.options.latency_ms_mean == 5


def test_settings_can_register_extra_kinds(settings):
    settings.ORCHESTRATOR = {
        **settings.ORCHESTRATOR,
        "PROVIDER_KINDS": {"echo_kind": "routing.providers.simulated.make_client"},
    }

    assert factory_for("echo_kind") is factory_for("simulated")


def test_aclose_clients_closes_the_loops_clients(fake_provider):
    spec = fake_provider.spec("openai")

    async def make_and_close():
        client = client_for(spec)
        await aclose_clients()
        return client, client_for(spec)

    closed, fresh = run(make_and_close())

    assert closed.sdk_client.is_closed()
    assert fresh is not closed
