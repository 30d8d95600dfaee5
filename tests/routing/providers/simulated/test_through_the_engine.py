"""A simulated model through the engine's public API: an agent loop (call, tool result, answer)
on a model with the tool_use capability, n choices, and the logprobs it refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from routing.engine.reset import engine_reset
from routing.errors import InvalidRequest
from routing.providers.simulated import reset_random
from tests.factories import ModelConfigFactory, ProviderFactory

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(autouse=True)
def clean_engine(db) -> Iterator[None]:
    engine_reset()
    reset_random()
    yield
    engine_reset()
    reset_random()


@pytest.fixture
def agent_model():
    provider = ProviderFactory(name="sim-agents", options={"latency_ms_mean": 0, "latency_ms_jitter": 0})
    return ModelConfigFactory(name="sim-agent", provider=provider, capabilities=["tool_use"])


def test_an_agent_loop_calls_the_tool_then_answers_from_its_result(agent_model):
    question = [{"role": "user", "content": "What's the weather in Paris?"}]

    first = async_to_sync(orchestrator.acomplete)(question, model="sim-agent", tools=[WEATHER])

    assert first.finish_reason == "tool_calls"
    (call,) = first.tool_calls
    assert (call["function"]["name"], json.loads(call["function"]["arguments"])) == (
        "get_weather",
        {"city": "Paris"},
    )
    history = [
        *question,
        {"role": "assistant", "content": None, "tool_calls": first.tool_calls},
        {"role": "tool", "tool_call_id": call["id"], "content": '{"temperature": 21, "sky": "clear"}'},
    ]

    second = async_to_sync(orchestrator.acomplete)(history, model="sim-agent", tools=[WEATHER])

    assert second.tool_calls == []
    assert second.finish_reason == "stop"
    assert second.text == "From the tool results: get_weather(Paris) returned temperature: 21, sky: clear."


def test_n_choices_come_from_one_call(agent_model):
    result = async_to_sync(orchestrator.acomplete)(
        [{"role": "user", "content": "Explain how a connection pool works."}], model="sim-agent", n=3
    )

    assert len(result.more_choices) == 2
    assert CallRecord.objects.count() == 1  # one call answered all three


def test_logprobs_are_refused_naming_the_param(agent_model):
    with pytest.raises(InvalidRequest, match="logprobs not supported by simulated") as caught:
        async_to_sync(orchestrator.acomplete)(
            [{"role": "user", "content": "Hi"}], model="sim-agent", logprobs=True
        )

    assert caught.value.param == "logprobs"
