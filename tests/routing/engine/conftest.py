"""Engine test support: a clean engine per test, factories for simulated models, helpers."""

from collections.abc import Iterator

import pytest

from tests.fake_provider import fake_provider_fixture  # noqa: F401  (the `fake_provider` fixture)


def engine_reset() -> None:
    from routing.engine.reset import engine_reset as reset_engine_state
    from routing.providers.simulated import reset_random

    reset_engine_state()
    reset_random()


@pytest.fixture(autouse=True)
def clean_engine(db) -> Iterator[None]:
    engine_reset()
    yield
    engine_reset()


def simulated_model(name: str, *, capabilities: list[str] | None = None, provider=None, **fields):
    """A ModelConfig on its own simulated provider answering at once (options overridable)."""
    from tests.factories import ModelConfigFactory, ProviderFactory

    options = fields.pop("options", None)
    if provider is None:
        provider = ProviderFactory(
            name=f"sim-{name}", options={"latency_ms_mean": 0, "latency_ms_jitter": 0, **(options or {})}
        )
    return ModelConfigFactory(name=name, provider=provider, capabilities=capabilities or [], **fields)
