"""Playground test helpers: simulated models that answer at once, fail, or need a key."""

from __future__ import annotations

from typing import Any

import pytest

from routing.models import ModelConfig, ProviderKind
from tests.factories import ModelConfigFactory, ProviderFactory

INSTANT = {"latency_ms_mean": 0, "latency_ms_jitter": 0}
FAILING = {
    "latency_ms_mean": 0,
    "latency_ms_jitter": 0,
    "failure_rate": 1.0,
    "failure_kinds": ["server_error"],
}


def sim_model(name: str, *, options: dict[str, Any] | None = None, **kwargs: Any) -> ModelConfig:
    """A simulated model on its own provider (so failure draws do not interfere)."""
    provider = ProviderFactory(
        name=f"sim-{name}", kind=ProviderKind.SIMULATED, options=options or dict(INSTANT)
    )
    kwargs.setdefault("input_cost_per_1k", "0.001")
    kwargs.setdefault("output_cost_per_1k", "0.002")
    return ModelConfigFactory.create(name=name, provider=provider, **kwargs)


def keyless_model(name: str = "needs-key") -> ModelConfig:
    provider = ProviderFactory(
        name=f"openai-{name}", kind=ProviderKind.OPENAI, api_key_env="PLAYGROUND_TEST_UNSET_KEY", options={}
    )
    return ModelConfigFactory.create(name=name, provider=provider)


@pytest.fixture
def two_models(db):
    return sim_model("sim-alpha"), sim_model("sim-beta")


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
