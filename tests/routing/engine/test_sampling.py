"""Sampling options through the Python API: validated, carried to every attempt (fallbacks
included), and a model whose kind cannot honour them passed over. What the providers received
is read from the fake server's history."""

from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from routing import orchestrator
from routing.errors import InvalidRequest
from routing.sampling import SamplingOptions
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply
from tests.routing.engine.conftest import simulated_model

MESSAGES = [{"role": "user", "content": "Say something useful."}]
OPTIONS: dict[str, Any] = {"stop": ["END"], "top_p": 0.9, "seed": 5, "presence_penalty": 1, "user": "u-1"}
SENT = {"stop": ["END"], "top_p": 0.9, "seed": 5, "presence_penalty": 1.0, "user": "u-1"}


def sent(received) -> dict:
    return {name: received.body.get(name) for name in SENT}


def test_complete_passes_them_to_the_provider(fake_provider):
    fake_provider.model("alpha")

    orchestrator.complete(MESSAGES, model="alpha", **OPTIONS)

    (received,) = fake_provider.requests_for("alpha")
    assert sent(received) == SENT


def test_a_chain_gives_its_fallback_model_the_same_options(fake_provider):
    FallbackChainFactory(name="main", models=[fake_provider.model("alpha"), fake_provider.model("beta")])
    fake_provider.script("alpha", Reply.model_not_found())

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main", **OPTIONS)

    assert result.model == "beta"
    assert [(r.model, sent(r)) for r in fake_provider.history] == [("alpha", SENT), ("beta", SENT)]


def test_a_route_gives_its_chain_the_same_options_when_streaming(fake_provider):
    alpha, beta = fake_provider.model("alpha"), fake_provider.model("beta", kind="anthropic")
    TaskRouteFactory(task_type="summarize", model=alpha, fallback_chain=FallbackChainFactory(models=[beta]))
    fake_provider.script("alpha", Reply.model_not_found())

    async def run() -> list:
        return [e async for e in orchestrator.astream(task_type="summarize", content="some text", **OPTIONS)]

    events = async_to_sync(run)()

    assert events[-1].kind == "done" and events[-1].result.model == "beta"
    first, second = fake_provider.history
    assert (first.model, first.body["stop"], first.body["seed"]) == ("alpha", ["END"], 5)
    assert (second.model, second.body["stop_sequences"], second.body["metadata"]) == (
        "beta",
        ["END"],
        {"user_id": "u-1"},
    )


def test_a_selection_passes_over_a_kind_that_cannot_honour_json_object(fake_provider):
    cheap = {"input_cost_per_1k": Decimal("0.1"), "output_cost_per_1k": Decimal("0.1")}
    dear = {"input_cost_per_1k": Decimal("5"), "output_cost_per_1k": Decimal("5")}
    fake_provider.model("claude", kind="anthropic", capabilities=["chat"], **cheap)
    fake_provider.model("alpha", capabilities=["chat"], **dear)

    plain = orchestrator.complete(MESSAGES, capabilities=["chat"])
    as_json = orchestrator.complete(MESSAGES, capabilities=["chat"], response_format={"type": "json_object"})

    assert (plain.model, as_json.model) == ("claude", "alpha")
    assert fake_provider.history[-1].body["response_format"] == {"type": "json_object"}


def test_a_chain_where_no_model_can_honour_them_is_an_invalid_request(fake_provider):
    FallbackChainFactory(name="claudes", models=[fake_provider.model("c1", kind="anthropic")])

    with pytest.raises(InvalidRequest) as caught:
        orchestrator.execute_with_fallback(MESSAGES, chain="claudes", response_format={"type": "json_object"})

    assert caught.value.param == "response_format"
    assert "c1" in caught.value.message
    assert fake_provider.history == []


def test_the_consensus_judge_does_not_get_the_callers_options(fake_provider):
    fake_provider.model("alpha")
    fake_provider.model("beta")
    fake_provider.model("judge")
    fake_provider.script("judge", Reply.ok('{"best": 1, "reason": "fine"}'))

    orchestrator.consensus(
        MESSAGES, models=["alpha", "beta"], aggregator="judge", judge_model="judge", stop="END"
    )

    assert {r.model: r.body.get("stop") for r in fake_provider.history} == {
        "alpha": ["END"],
        "beta": ["END"],
        "judge": None,
    }


def test_simulated_models_honour_stop_and_json_object():
    simulated_model("sim")
    full = orchestrator.complete(MESSAGES, model="sim").text

    cut = orchestrator.complete(MESSAGES, model="sim", stop=".")
    as_json = orchestrator.complete(MESSAGES, model="sim", response_format={"type": "json_object"})

    assert (cut.text, cut.finish_reason) == (full[: full.index(".")], "stop")
    assert as_json.text.startswith("{")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"top_p": 2}, "top_p"),
        ({"stop": ["a"] * 5}, "stop"),
        ({"seed": "1"}, "seed"),
        ({"frequency_penalty": -3}, "frequency_penalty"),
        ({"response_format": {"type": "yaml"}}, "response_format.type"),
        ({"user": 1}, "user"),
        ({"sampling": {"top_p": 1}}, "sampling"),
    ],
)
def test_a_bad_value_is_an_invalid_request_naming_it(kwargs, param):
    simulated_model("sim")

    with pytest.raises(InvalidRequest) as caught:
        orchestrator.complete(MESSAGES, model="sim", **kwargs)

    assert caught.value.param == param


def test_sampling_and_the_keyword_arguments_do_not_mix():
    simulated_model("sim")

    with pytest.raises(TypeError):
        orchestrator.complete(MESSAGES, model="sim", sampling=SamplingOptions(seed=1), seed=2)


def test_a_stream_passes_over_a_model_that_cannot_honour_them_and_says_so(fake_provider):
    FallbackChainFactory(
        name="mixed", models=[fake_provider.model("claude", kind="anthropic"), fake_provider.model("alpha")]
    )

    async def run() -> list:
        return [
            e
            async for e in orchestrator.astream(
                MESSAGES, chain="mixed", response_format={"type": "json_object"}
            )
        ]

    events = async_to_sync(run)()

    attempt = events[0]
    assert (attempt.kind, attempt.model) == ("attempt", "alpha")
    assert [(s.model, s.category) for s in attempt.skipped] == [("claude", "unsupported")]
    assert events[-1].kind == "done"
    assert [r.model for r in fake_provider.history] == ["alpha"]


def test_a_consensus_member_that_cannot_honour_them_fails_alone(fake_provider):
    fake_provider.model("claude", kind="anthropic")
    fake_provider.model("alpha")

    outcome = orchestrator.consensus(
        MESSAGES, models=["claude", "alpha"], response_format={"type": "json_object"}
    )

    assert outcome.model == "alpha"
    assert {m.model: m.status for m in outcome.members} == {"claude": "error", "alpha": "ok"}
    assert "json_object" in next(m.error for m in outcome.members if m.model == "claude")
    assert [r.model for r in fake_provider.history] == ["alpha"]
