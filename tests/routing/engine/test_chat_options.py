"""Chat options through the Python API on the OpenAI wire: tools, tool_choice, parallel tool
calls, n, logprobs and reasoning effort sent as given (nothing extra when unset), read back
into the Result, carried to every attempt. What the provider received is the fake server's."""

import json

import pytest
from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from routing.errors import InvalidRequest
from routing.messages import ChatOptions, chat_options
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply

MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME = {"type": "function", "function": {"name": "time", "parameters": {"type": "object"}}}
CHAT_FIELDS = (
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "n",
    "logprobs",
    "top_logprobs",
    "reasoning_effort",
)


def tool_model(fake_provider, name="gpt", **fields):
    return fake_provider.model(name, capabilities=["tool_use"], **fields)


def test_a_plain_request_sends_none_of_the_chat_fields(fake_provider):
    fake_provider.model("gpt")

    result = orchestrator.complete(MESSAGES, model="gpt")

    (received,) = fake_provider.requests_for("gpt")
    assert not set(CHAT_FIELDS) & set(received.body)
    assert (result.tool_calls, result.logprobs, result.more_choices) == ([], None, [])


def test_a_tool_call_comes_back_in_openai_shape(fake_provider):
    tool_model(fake_provider)
    fake_provider.script("gpt", Reply.tool_call("weather", {"city": "Paris"}, id="call_7"))

    result = orchestrator.complete(MESSAGES, model="gpt", tools=[WEATHER])

    assert result.tool_calls == [
        {
            "id": "call_7",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert (result.text, result.finish_reason) == ("", "tool_calls")
    assert fake_provider.requests_for("gpt")[0].body["tools"] == [WEATHER]


@pytest.mark.parametrize(
    "tool_choice",
    ["auto", "required", "none", {"type": "function", "function": {"name": "time"}}],
    ids=["auto", "required", "none", "named"],
)
def test_tool_choice_is_sent_as_given(fake_provider, tool_choice):
    tool_model(fake_provider)

    orchestrator.complete(MESSAGES, model="gpt", tools=[WEATHER, TIME], tool_choice=tool_choice)

    body = fake_provider.requests_for("gpt")[0].body
    assert body["tool_choice"] == tool_choice
    assert [t["function"]["name"] for t in body["tools"]] == ["weather", "time"]


def test_parallel_tool_calls_are_sent_and_every_call_is_read_back(fake_provider):
    tool_model(fake_provider)
    fake_provider.script(
        "gpt",
        Reply.tool_calls_of(
            {"id": "call_a", "name": "weather", "arguments": {"city": "Paris"}},
            {"id": "call_b", "name": "time", "arguments": {}},
        ),
    )

    result = orchestrator.complete(MESSAGES, model="gpt", tools=[WEATHER, TIME], parallel_tool_calls=True)

    assert fake_provider.requests_for("gpt")[0].body["parallel_tool_calls"] is True
    assert [(c["id"], c["function"]["name"]) for c in result.tool_calls] == [
        ("call_a", "weather"),
        ("call_b", "time"),
    ]


def test_n_three_on_a_native_kind_is_one_request_with_three_choices(fake_provider):
    fake_provider.model("gpt")
    fake_provider.script("gpt", Reply.ok("one two three"))

    result = orchestrator.complete(MESSAGES, model="gpt", n=3)

    (received,) = fake_provider.requests_for("gpt")
    assert received.body["n"] == 3
    assert result.text == "one two three"
    assert [c["text"] for c in result.more_choices] == ["one two three", "one two three"]
    assert [c["finish_reason"] for c in result.more_choices] == ["stop", "stop"]
    assert result.usage.output_tokens == 9  # the provider's usage covers every choice
    assert CallRecord.objects.get().output_tokens == 9


def test_logprobs_are_sent_and_read_back(fake_provider):
    fake_provider.model("gpt")
    fake_provider.script("gpt", Reply.ok("one two"))

    result = orchestrator.complete(MESSAGES, model="gpt", logprobs=True, top_logprobs=2)

    body = fake_provider.requests_for("gpt")[0].body
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)
    assert [t["token"] for t in result.logprobs["content"]] == ["one", " two"]
    assert len(result.logprobs["content"][0]["top_logprobs"]) == 2


def test_reasoning_effort_and_max_completion_tokens_are_sent(fake_provider):
    fake_provider.model("gpt")

    orchestrator.complete(MESSAGES, model="gpt", reasoning_effort="low", max_completion_tokens=40)

    body = fake_provider.requests_for("gpt")[0].body
    assert (body["reasoning_effort"], body["max_completion_tokens"]) == ("low", 40)


def test_max_completion_tokens_wins_over_max_tokens(fake_provider):
    fake_provider.model("gpt")

    orchestrator.complete(MESSAGES, model="gpt", max_tokens=10, max_completion_tokens=30)

    assert fake_provider.requests_for("gpt")[0].body["max_completion_tokens"] == 30


def test_a_chain_gives_its_fallback_the_same_chat_options(fake_provider):
    FallbackChainFactory(
        name="main", models=[tool_model(fake_provider, "alpha"), tool_model(fake_provider, "beta")]
    )
    fake_provider.script("alpha", Reply.server_error(503), Reply.server_error(503), Reply.server_error(503))
    fake_provider.script("beta", Reply.tool_call("weather", {"city": "Paris"}))

    result = orchestrator.execute_with_fallback(
        MESSAGES, chain="main", chat=chat_options({"tools": [WEATHER], "tool_choice": "required"})
    )

    assert result.model == "beta" and result.tool_calls[0]["function"]["name"] == "weather"
    assert {(r.model, r.body["tool_choice"]) for r in fake_provider.history} == {
        ("alpha", "required"),
        ("beta", "required"),
    }


def test_an_agent_loop_sends_the_whole_conversation_with_tool_turns(fake_provider):
    tool_model(fake_provider)
    fake_provider.script(
        "gpt", Reply.tool_call("weather", {"city": "Paris"}, id="call_1"), Reply.ok("Sunny.")
    )

    first = orchestrator.complete(MESSAGES, model="gpt", tools=[WEATHER])
    turns = [
        *MESSAGES,
        {"role": "assistant", "content": None, "tool_calls": first.tool_calls},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "clear"}'},
    ]
    second = orchestrator.complete(turns, model="gpt", tools=[WEATHER])

    assert second.text == "Sunny."
    sent = fake_provider.requests_for("gpt")[1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assert sent[1]["tool_calls"] == first.tool_calls and sent[2]["tool_call_id"] == "call_1"


def test_a_tool_message_answering_no_call_is_refused_before_anything_is_sent(fake_provider):
    tool_model(fake_provider)

    with pytest.raises(InvalidRequest) as caught:
        orchestrator.complete(
            [*MESSAGES, {"role": "tool", "tool_call_id": "nope", "content": "x"}], model="gpt"
        )

    assert caught.value.param == "messages[1].tool_call_id"
    assert fake_provider.requests_for("gpt") == []


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"tools": "weather"}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"n": 0}, "n"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"reasoning_effort": "max"}, "reasoning_effort"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ],
)
def test_bad_chat_options_are_refused_naming_the_field(fake_provider, kwargs, param):
    fake_provider.model("gpt")

    with pytest.raises(InvalidRequest) as caught:
        orchestrator.complete(MESSAGES, model="gpt", **kwargs)

    assert caught.value.param == param
    assert fake_provider.requests_for("gpt") == []


def test_chat_and_the_named_options_together_are_a_type_error(fake_provider):
    with pytest.raises(TypeError, match="chat= or n"):
        orchestrator.complete(MESSAGES, model="gpt", chat=ChatOptions(n=2), n=2)


def test_a_stream_of_n_answers_is_refused(fake_provider):
    fake_provider.model("gpt")

    async def run():
        return [e async for e in orchestrator.astream(MESSAGES, model="gpt", n=2)]

    with pytest.raises(InvalidRequest) as caught:
        async_to_sync(run)()

    assert caught.value.param == "n"


def test_the_record_keeps_the_tool_calls_after_the_answer_text(fake_provider):
    tool_model(fake_provider)
    fake_provider.script(
        "gpt", Reply.tool_call("weather", {"city": "Paris"}, id="call_9", text="Let me look.")
    )

    orchestrator.complete(MESSAGES, model="gpt", tools=[WEATHER])

    text = CallRecord.objects.get().response_text
    head, _, calls = text.partition("\n\ntool_calls: ")
    assert head == "Let me look."
    assert json.loads(calls)[0]["id"] == "call_9"


def test_an_answer_whose_tool_arguments_are_not_json_is_a_provider_error(fake_provider):
    tool_model(fake_provider)
    fake_provider.script("gpt", *[Reply.tool_call("weather", '{"city": "Par')] * 3)

    with pytest.raises(orchestrator.AllAttemptsFailed, match="not a JSON object"):
        orchestrator.complete(MESSAGES, model="gpt", tools=[WEATHER])

    assert {r.error_class for r in CallRecord.objects.all()} == {"transient"}


@pytest.mark.parametrize("kind", ["openai", "azure_openai", "openai_compatible"])
def test_every_openai_style_kind_passes_tools_through_plain_and_streamed(fake_provider, kind):
    fake_provider.model("m", kind=kind, capabilities=["tool_use"])
    fake_provider.script(
        "m",
        Reply.tool_call("weather", {"city": "Oslo"}, id="c1"),
        Reply.tool_call("weather", {"city": "Rome"}, id="c2"),
    )

    plain = orchestrator.complete(MESSAGES, model="m", tools=[WEATHER], tool_choice="required")

    async def run():
        return [e async for e in orchestrator.astream(MESSAGES, model="m", tools=[WEATHER])]

    streamed = async_to_sync(run)()[-1].result
    assert [(r.tool_calls[0]["id"], r.finish_reason) for r in (plain, streamed)] == [
        ("c1", "tool_calls"),
        ("c2", "tool_calls"),
    ]
    first, second = fake_provider.requests_for("m")
    assert (first.body["tools"], first.body["tool_choice"]) == ([WEATHER], "required")
    assert second.body["tools"] == [WEATHER] and second.body["stream"] is True
