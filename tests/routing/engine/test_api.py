"""The Python API: bad input fails cleanly (nothing sent, nothing recorded); parallel; sync/async."""

import threading

import pytest
from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from routing.errors import (
    InvalidRequest,
    NoCandidate,
    OrchestratorError,
    ProviderKeyMissing,
    UnknownChain,
    UnknownModel,
)
from tests.factories import FallbackChainFactory, ProviderFactory
from tests.fake_provider import Reply
from tests.routing.engine.conftest import simulated_model

MESSAGES = [{"role": "user", "content": "hello"}]


@pytest.fixture
def model(fake_provider, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0}
    return fake_provider.model("m", capabilities=["chat"], context_window=1000)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: orchestrator.complete(MESSAGES, model="ghost"), UnknownModel, "'ghost'"),
        (lambda: orchestrator.execute_with_fallback(MESSAGES, chain="ghost"), UnknownChain, "'ghost'"),
        (lambda: orchestrator.complete([], model="m"), InvalidRequest, "at least one message"),
        (
            lambda: orchestrator.complete([{"role": "user", "content": "  "}], model="m"),
            InvalidRequest,
            "empty",
        ),
        (
            lambda: orchestrator.complete([{"role": "boss", "content": "x"}], model="m"),
            InvalidRequest,
            "role",
        ),
        (lambda: orchestrator.complete(MESSAGES, capabilities=["flying"]), NoCandidate, "flying"),
        (lambda: orchestrator.complete(MESSAGES, model="m", temperature=7), InvalidRequest, "temperature"),
        (lambda: orchestrator.complete(MESSAGES, model="m", max_tokens=0), InvalidRequest, "max_tokens"),
        (
            lambda: orchestrator.complete(MESSAGES, capabilities=["chat"], optimize_for="vibes"),
            InvalidRequest,
            "cost",
        ),
        (
            lambda: orchestrator.complete([{"role": "user", "content": "x" * 8000}], model="m"),
            InvalidRequest,
            "context window",
        ),
        (
            lambda: orchestrator.complete([{"role": "user", "content": "x" * 8000}], capabilities=["chat"]),
            InvalidRequest,
            "context window",
        ),
        (lambda: orchestrator.consensus(MESSAGES, models=["m", "ghost"]), UnknownModel, "'ghost'"),
        (
            lambda: orchestrator.consensus(MESSAGES, models=["m"], aggregator="loudest"),
            InvalidRequest,
            "majority",
        ),
    ],
    ids=[
        "unknown-model",
        "unknown-chain",
        "no-messages",
        "blank-messages",
        "bad-role",
        "missing-capability",
        "bad-temperature",
        "bad-max-tokens",
        "bad-optimize-for",
        "too-long-for-the-model",
        "too-long-for-every-candidate",
        "unknown-consensus-member",
        "unknown-aggregator",
    ],
)
def test_bad_input_is_named_and_nothing_is_sent_or_recorded(fake_provider, model, call, error, words):
    with pytest.raises(error, match=words):
        call()

    assert fake_provider.history == []
    assert CallRecord.objects.count() == 0


def test_a_model_whose_key_variable_is_unset_names_the_variable(fake_provider, monkeypatch):
    fake_provider.model("locked", provider=fake_provider.provider(name="locked-p", api_key_env="LOCKED_KEY"))
    monkeypatch.delenv("LOCKED_KEY", raising=False)

    with pytest.raises(ProviderKeyMissing, match="LOCKED_KEY"):
        orchestrator.complete(MESSAGES, model="locked")

    assert fake_provider.history == []
    assert CallRecord.objects.count() == 0


def test_a_chain_skips_a_keyless_step_and_answers_from_the_next(fake_provider, monkeypatch):
    monkeypatch.delenv("LOCKED_KEY", raising=False)
    locked = fake_provider.model(
        "locked", provider=fake_provider.provider(name="locked-p", api_key_env="LOCKED_KEY")
    )
    fine = fake_provider.model("fine")
    FallbackChainFactory(name="c", models=[locked, fine])

    result = orchestrator.execute_with_fallback(MESSAGES, chain="c")

    assert result.model == "fine"
    assert [a.model for a in result.attempts] == ["fine"]


def test_the_sync_api_inside_a_running_loop_points_to_the_async_twin(model):
    async def misuse():
        orchestrator.complete(MESSAGES, model="m")

    with pytest.raises(RuntimeError, match=r"await orchestrator\.acomplete"):
        async_to_sync(misuse)()


def test_unknown_keyword_arguments_are_a_type_error(model):
    with pytest.raises(TypeError, match="colour"):
        orchestrator.complete(MESSAGES, model="m", colour="blue")


def test_parallel_returns_results_in_order_with_failures_in_their_slot(fake_provider, model):
    fake_provider.model("broken")
    fake_provider.script("broken", Reply.unauthorized())
    tasks = [
        {"messages": [{"role": "user", "content": "first"}], "capabilities": ["chat"]},
        {"messages": [{"role": "user", "content": "second"}], "model": "broken"},
        {"messages": [{"role": "user", "content": "third"}], "model": "ghost"},
        {"messages": [{"role": "user", "content": "fourth"}], "model": "m"},
    ]

    results = orchestrator.execute_parallel(tasks)

    assert "first" in results[0].text
    assert isinstance(results[1], OrchestratorError) and results[1].http_status == 502
    assert isinstance(results[2], UnknownModel)
    assert "fourth" in results[3].text
    assert len({r.trace_id for r in (results[0], results[3])}) == 2


def test_parallel_keeps_to_its_concurrency_bound(fake_provider, model):
    fake_provider.script("m", *[Reply.slow(latency_s=0.2) for _ in range(6)])
    peak = {"in_flight": 0}

    def in_flight_peak(history):
        # Evaluated on every change the server sees (a request arriving, an answer sent).
        peak["in_flight"] = max(peak["in_flight"], sum(not r.completed for r in history))
        return len(history) == 6 and all(r.completed for r in history)

    watcher = threading.Thread(target=lambda: fake_provider.wait_for(in_flight_peak, timeout=20))
    watcher.start()
    results = orchestrator.execute_parallel(
        [{"messages": [{"role": "user", "content": f"n{i}"}], "model": "m"} for i in range(6)], concurrency=2
    )
    watcher.join(20)

    # Unbounded, all six would be in flight at once; the bound allows two (three for the
    # instant between an answer leaving and the server marking it completed).
    assert 2 <= peak["in_flight"] <= 3
    assert [r.text.split()[-1] for r in results] == ["n0", "n1", "n2", "n3", "n4", "n5"]


def test_parallel_accepts_routes_and_the_seeds_task_shape(model):
    from tests.factories import TaskRouteFactory

    TaskRouteFactory(task_type="echo", model=model)

    results = orchestrator.execute_parallel(
        [
            {"task_type": "echo", "content": "routed"},
            {
                "messages": [{"role": "user", "content": "seed"}],
                "capabilities": [],
                "kwargs": {"model_override": "m"},
            },
        ]
    )

    assert "routed" in results[0].text
    assert "seed" in results[1].text


def test_the_async_api_works_from_a_running_loop(model):
    async def run():
        return await orchestrator.acomplete(MESSAGES, model="m")

    assert "hello" in async_to_sync(run)().text


def test_system_overrides_the_route_prompt_and_is_sent(fake_provider, model):
    orchestrator.complete(MESSAGES, model="m", system="Be brief.")

    assert fake_provider.requests_for("m")[0].body["messages"][0] == {
        "role": "system",
        "content": "Be brief.",
    }


def test_complete_tries_the_next_ranked_candidate_when_the_best_fails(fake_provider, model):
    fake_provider.model("pricier", capabilities=["chat"], input_cost_per_1k=9, output_cost_per_1k=9)
    from routing.models import ModelConfig

    ModelConfig.objects.filter(name="m").update(input_cost_per_1k=0, output_cost_per_1k=0)
    fake_provider.script("m", Reply.unauthorized())

    result = orchestrator.complete(MESSAGES, capabilities=["chat"])

    assert [a.model for a in result.attempts] == ["m", "pricier"]
    assert [r.role for r in CallRecord.objects.order_by("id")] == ["primary", "fallback"]


def test_a_disabled_provider_refuses_its_explicit_model(fake_provider):
    simulated_model("off", provider=ProviderFactory(name="off-p", enabled=False))

    with pytest.raises(NoCandidate, match="off-p disabled"):
        orchestrator.complete(MESSAGES, model="off")
