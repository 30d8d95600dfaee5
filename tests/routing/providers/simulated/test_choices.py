"""n choices in one call (the kind declares NATIVE_N) and the chat options it refuses."""

from __future__ import annotations

import json

from routing.messages import chat_options
from routing.providers.base import ProviderSpec
from routing.providers.registry import chat_refusal_for, native_n_for
from routing.providers.simulated import reset_random
from tests.routing.providers.conftest import complete, request

OPEN_QUESTION = [{"role": "user", "content": "Explain how a connection pool works."}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def sim() -> ProviderSpec:
    reset_random("sim")
    return ProviderSpec(name="sim", kind="simulated", options={"latency_ms_mean": 0, "latency_ms_jitter": 0})


def test_the_kind_answers_n_itself():
    assert native_n_for("simulated")


def test_n_choices_come_back_in_one_completion_with_their_usage_summed():
    one = complete(sim(), request("sim-a", messages=OPEN_QUESTION))

    three = complete(sim(), request("sim-a", messages=OPEN_QUESTION, chat=chat_options({"n": 3})))

    assert three.text == one.text
    assert len(three.more_choices) == 2
    texts = [three.text, *(c.text for c in three.more_choices)]
    assert len(set(texts)) > 1
    assert all(c.finish_reason == "stop" for c in three.more_choices)
    assert three.usage.input_tokens == one.usage.input_tokens
    assert three.usage.output_tokens == sum(len(t.split()) for t in texts)


def test_the_same_request_gets_the_same_choices():
    req = request("sim-a", messages=OPEN_QUESTION, chat=chat_options({"n": 3}))

    first, second = complete(sim(), req), complete(sim(), req)

    assert [c.text for c in first.more_choices] == [c.text for c in second.more_choices]


def test_each_choice_makes_its_own_tool_calls_with_their_own_ids():
    messages = [{"role": "user", "content": "What's the weather in Oslo?"}]

    completion = complete(
        sim(), request("sim-a", messages=messages, chat=chat_options({"tools": [WEATHER], "n": 2}))
    )

    (choice,) = completion.more_choices
    assert choice.finish_reason == "tool_calls"
    calls = [completion.tool_calls[0], choice.tool_calls[0]]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"city": "Oslo"}] * 2
    assert calls[0]["id"] != calls[1]["id"]


def test_logprobs_are_refused_naming_the_param():
    refusal = chat_refusal_for("simulated")

    assert refusal is not None
    assert refusal(chat_options({"logprobs": True, "top_logprobs": 2})) == (
        "logprobs",
        "logprobs not supported by simulated",
    )


def test_the_other_chat_options_are_honoured():
    refusal = chat_refusal_for("simulated")
    options = chat_options(
        {
            "tools": [WEATHER],
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "n": 2,
            "reasoning_effort": "low",
        }
    )

    assert refusal is not None and refusal(options) is None
