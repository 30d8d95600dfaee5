"""Compare fixtures: eager Celery for the SQLite pass, simulated models, the seed's default chain."""

from decimal import Decimal

import pytest

from compare.parsing import PromptRow
from compare.services.runs import candidates_parse, run_create
from tests.factories import FallbackChainFactory, ModelConfigFactory, ProviderFactory


@pytest.fixture
def eager_celery(settings):
    """Run tasks inline (no broker), as the SQLite pass does."""
    from orchestrator_site.celery import app

    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture(autouse=True)
def _private_broker(request):
    """Tasks queued by a test go to an in-memory broker, never to the developer's var/ queue
    (tests with real workers point the app at Redis themselves)."""
    if "workers" in request.fixturenames:
        yield
        return
    from orchestrator_site.celery import app

    saved = app.conf.broker_url
    app.conf.broker_url = "memory://"
    yield
    app.conf.broker_url = saved


@pytest.fixture(autouse=True)
def _fresh_engine_state():
    """Breakers and slots live in the cache; each test starts closed and free."""
    from django.core.cache import cache

    from routing.engine.breaker import breaker_reset

    cache.clear()
    breaker_reset()
    yield
    cache.clear()
    breaker_reset()


def simulated_model(name: str, *, provider: str = "sim", price: str | None = "0.001", **options):
    opts = {"latency_ms_mean": 0, "latency_ms_jitter": 0, **options}
    prov = ProviderFactory(name=provider, kind="simulated", options=opts)
    fields = {}
    if price is not None:
        fields = {"input_cost_per_1k": Decimal(price), "output_cost_per_1k": Decimal(price) * 2}
    return ModelConfigFactory(name=name, provider=prov, model_id=name, **fields)


@pytest.fixture
def seed_default_chain(db):
    """The seed's `default` chain (gpt-4o → claude-3.5-sonnet → gpt-4o-mini) on simulated models."""
    models = [
        simulated_model("gpt-4o", provider="sim-openai"),
        simulated_model("claude-3.5-sonnet", provider="sim-anthropic"),
        simulated_model("gpt-4o-mini", provider="sim-openai"),
    ]
    return FallbackChainFactory(name="default", models=models)


def make_run(
    *,
    inputs: list[str],
    candidates: list[str],
    user=None,
    assertions=None,
    spend_cap: str | None = None,
    expected: list[str] | None = None,
    max_tokens: int = 64,
):
    rows = [
        PromptRow(input=text, expected=(expected or [""] * len(inputs))[i]) for i, text in enumerate(inputs)
    ]
    specs = candidates_parse(values=candidates, rows=rows)
    return run_create(
        user=user,
        name="test run",
        rows=rows,
        candidates=specs,
        assertions=assertions or [],
        max_tokens=max_tokens,
        temperature=None,
        spend_cap_usd=Decimal(spend_cap) if spend_cap else None,
    )
