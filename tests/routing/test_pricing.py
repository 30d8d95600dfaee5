"""Unit prices from the override or the bundled catalogue, and exact call costs."""

from __future__ import annotations

import socket
from decimal import Decimal

import pytest

from routing.engine.types import Usage
from routing.pricing import (
    call_cost,
    catalogue_prices,
    model_prices,
    model_unit_prices,
    unit_prices_for,
    usage_cost,
)
from tests.factories import ModelConfigFactory, ProviderFactory

D = Decimal


def model(kind: str, model_id: str, **fields):
    provider = ProviderFactory(name=f"p-{kind}", kind=kind, options={})
    return ModelConfigFactory(name=f"{kind}-{model_id}", provider=provider, model_id=model_id, **fields)


@pytest.mark.django_db
def test_override_prices_win_over_the_catalogue():
    m = model("openai", "gpt-4o", input_cost_per_1k=D("0.001"), output_cost_per_1k=D("0.002"))

    assert model_unit_prices(m) == (D("0.001"), D("0.002"), "override")


@pytest.mark.django_db
def test_a_zero_override_is_a_known_price_not_unknown():
    m = model("simulated", "sim-a", input_cost_per_1k=D("0"), output_cost_per_1k=D("0"))

    assert model_unit_prices(m) == (D("0"), D("0"), "override")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "model_id", "input_per_1k", "output_per_1k"),
    [
        ("openai", "gpt-4o", "0.0025", "0.01"),
        ("openai", "gpt-4o-mini", "0.00015", "0.0006"),
        ("anthropic", "claude-3-5-sonnet-20240620", "0.003", "0.015"),
        ("azure_openai", "gpt-4o", "0.0025", "0.01"),
    ],
)
def test_catalogue_prices_are_found_by_kind_and_model_id(kind, model_id, input_per_1k, output_per_1k):
    assert model_unit_prices(model(kind, model_id)) == (D(input_per_1k), D(output_per_1k), "catalogue")


@pytest.mark.django_db
def test_a_gemini_model_is_priced_from_google():
    in_price, out_price, source = model_unit_prices(model("gemini", "gemini-1.5-pro"))

    assert source == "catalogue"
    assert in_price is not None and out_price is not None and out_price > in_price


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "model_id"),
    [("openai", "no-such-model-xyz"), ("openai_compatible", "llama3.1:8b"), ("simulated", "gpt-4o")],
)
def test_an_unknown_price_is_none_never_zero(kind, model_id):
    assert model_unit_prices(model(kind, model_id)) == (None, None, "unknown")


@pytest.mark.django_db
def test_one_override_alone_falls_back_to_the_catalogue():
    m = model("openai", "gpt-4o-mini", input_cost_per_1k=D("1"))

    assert model_unit_prices(m)[2] == "catalogue"


def test_the_catalogue_is_read_offline(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("pricing tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    catalogue_prices.cache_clear()

    assert catalogue_prices("openai", "gpt-4o").source == "catalogue"


def test_call_cost_is_exact():
    cost = call_cost(
        input_tokens=1234, output_tokens=567, input_price_per_1k=D("0.0025"), output_price_per_1k=D("0.01")
    )

    assert cost == D("0.008755")  # 1234 × 0.0025 / 1000 + 567 × 0.01 / 1000


def test_call_cost_is_none_when_a_price_is_unknown():
    assert (
        call_cost(input_tokens=10, output_tokens=10, input_price_per_1k=None, output_price_per_1k=D("1"))
        is None
    )


def test_cached_tokens_are_charged_at_the_cache_read_price_from_the_catalogue():
    prices = unit_prices_for(kind="openai", model_id="gpt-4o")

    cost = usage_cost(prices, Usage(input_tokens=1000, output_tokens=500, cached_tokens=200))

    assert prices.cached_input_per_1k == D("0.00125")
    assert cost == D("0.00725")  # 800 × 0.0025 + 200 × 0.00125 + 500 × 0.01, per 1000


def test_with_no_cache_price_cached_tokens_cost_the_input_price():
    prices = unit_prices_for(
        kind="openai", model_id="gpt-4o", input_override=D("0.002"), output_override=D("0.004")
    )

    cost = usage_cost(prices, Usage(input_tokens=1000, output_tokens=0, cached_tokens=600))

    assert cost == D("0.002")


@pytest.mark.django_db
def test_model_prices_carries_the_cache_read_price():
    assert model_prices(model("anthropic", "claude-3-5-sonnet-20240620")).cached_input_per_1k == D("0.0003")
