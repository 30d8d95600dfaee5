"""Tools, tool choice, tool turns, images and chat options on the Anthropic kind, through the
anthropic SDK's wire against the fake provider (what it received, and what came back)."""

from __future__ import annotations

import base64
import json

import pytest

from routing.errors import InvalidRequest, TransientError
from routing.messages import chat_options, messages_parse
from routing.providers.anthropic import chat_refusal
from routing.providers.base import ChatOptions, StreamEnd, ToolCallDelta, Usage
from routing.providers.registry import client_for
from tests.fake_provider import Reply
from tests.routing.providers.conftest import complete, complete_error, request, run, stream, stream_error

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "time", "parameters": {"type": "object", "properties": {}}}}
ASK = [{"role": "user", "content": "Weather in Paris and Rome?"}]
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def tools_request(messages=ASK, **options):
    return request(
        "claude", messages=messages_parse(messages), chat=chat_options({"tools": [WEATHER, TIME], **options})
    )


def client_items(spec, req) -> list:
    """What the client's own stream yields (text, tool-call pieces, the end), in order."""

    async def go() -> list:
        return [item async for item in client_for(spec).stream(req)]

    return run(go())


def an_openai_agent_turn() -> list[dict]:
    """A conversation an OpenAI model started: its calls have OpenAI's `call_…` ids."""
    return [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_P4r1s",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_R0me",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_P4r1s", "content": "18 °C"},
        {"role": "tool", "tool_call_id": "call_R0me", "content": '{"celsius": 24}'},
    ]


def test_tools_are_sent_as_input_schemas(fake_provider):
    complete(fake_provider.spec("anthropic"), tools_request())

    body = fake_provider.history[0].body
    assert body["tools"] == [
        {
            "name": "weather",
            "input_schema": WEATHER["function"]["parameters"],
            "description": "The weather in a city.",
        },
        {"name": "time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in body  # not set: Anthropic's default (auto)


@pytest.mark.parametrize(
    ("options", "sent"),
    [
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "required"}, {"type": "any"}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "time"}}},
            {"type": "tool", "name": "time"},
        ),
        ({"tool_choice": "none"}, {"type": "none"}),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        (
            {"tool_choice": "required", "parallel_tool_calls": False},
            {"type": "any", "disable_parallel_tool_use": True},
        ),
    ],
    ids=["auto", "required", "named", "none", "one-call-at-a-time", "required-one-call"],
)
def test_each_tool_choice_is_sent_as_anthropics(fake_provider, options, sent):
    complete(fake_provider.spec("anthropic"), tools_request(**options))

    assert fake_provider.history[0].body["tool_choice"] == sent


def test_parallel_tool_use_blocks_come_back_as_tool_calls_with_their_ids(fake_provider):
    fake_provider.script(
        "claude",
        Reply.tool_calls_of(
            {"id": "toolu_01", "name": "weather", "arguments": {"city": "Paris"}},
            {"id": "toolu_02", "name": "weather", "arguments": {"city": "Rome"}},
            text="Checking both.",
        ),
    )

    completion = complete(fake_provider.spec("anthropic"), tools_request())

    assert completion.text == "Checking both."
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls == [
        {
            "id": "toolu_01",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
        },
        {
            "id": "toolu_02",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
        },
    ]


def test_streamed_tool_use_arrives_as_pieces_then_assembled_calls(fake_provider):
    fake_provider.script(
        "claude",
        Reply.tool_calls_of(
            {"id": "toolu_01", "name": "weather", "arguments": {"city": "Paris"}},
            {"id": "toolu_02", "name": "time", "arguments": {}},
            text="Let me look.",
        ),
    )

    items = client_items(fake_provider.spec("anthropic"), tools_request())

    text = "".join(i for i in items if isinstance(i, str))
    pieces = [i for i in items if isinstance(i, ToolCallDelta)]
    end = items[-1]
    assert text == "Let me look."
    assert pieces[0] == ToolCallDelta(index=0, id="toolu_01", name="weather")
    assert "".join(p.arguments for p in pieces if p.index == 0) == '{"city": "Paris"}'
    assert len([p for p in pieces if p.index == 0]) > 2  # the arguments came in fragments
    assert [p for p in pieces if p.index == 1][0] == ToolCallDelta(index=1, id="toolu_02", name="time")
    assert isinstance(end, StreamEnd) and end.finish_reason == "tool_calls"
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in end.tool_calls] == [
        ("toolu_01", "weather", '{"city": "Paris"}'),
        ("toolu_02", "time", "{}"),
    ]


def test_the_transport_stream_ends_with_the_assembled_calls(fake_provider):
    fake_provider.script("claude", Reply.tool_call("weather", {"city": "Oslo"}, id="toolu_9"))

    end = stream(fake_provider.spec("anthropic"), tools_request())[-1]

    assert isinstance(end, StreamEnd)
    assert end.tool_calls[0]["function"] == {"name": "weather", "arguments": '{"city": "Oslo"}'}
    assert end.finish_reason == "tool_calls"


def test_an_openai_started_conversation_continues_with_its_ids_and_one_user_turn_of_results(fake_provider):
    completion = complete(fake_provider.spec("anthropic"), tools_request(an_openai_agent_turn()))

    turns = fake_provider.history[0].body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": "call_P4r1s", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_R0me", "name": "weather", "input": {"city": "Rome"}},
    ]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_P4r1s", "content": "18 °C"},
        {"type": "tool_result", "tool_use_id": "call_R0me", "content": '{"celsius": 24}'},
    ]
    assert completion.text  # the fake answers the tool results


def test_tool_turns_without_tools_offered_still_declare_the_tools_they_used(fake_provider):
    # A final "now answer" turn: the API refuses tool_use blocks with no tool declared.
    complete(
        fake_provider.spec("anthropic"), request("claude", messages=messages_parse(an_openai_agent_turn()))
    )

    body = fake_provider.history[0].body
    assert body["tools"] == [{"name": "weather", "input_schema": {"type": "object"}}]
    assert body["tool_choice"] == {"type": "none"}


def test_images_are_sent_as_image_blocks(fake_provider):
    messages = messages_parse(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg"}},
                ],
            }
        ]
    )

    complete(fake_provider.spec("anthropic"), request("claude", messages=messages))

    received = fake_provider.history[0]
    assert received.images() == [
        {"source": "base64", "media_type": "image/png", "data": PNG_B64},
        {"source": "url", "url": "https://example.org/cat.jpg"},
    ]
    assert received.body["messages"][0]["content"][0] == {"type": "text", "text": "What is in these?"}


def test_a_tool_use_whose_input_is_not_an_object_is_a_transient_provider_error(fake_provider):
    fake_provider.script("claude", Reply.tool_call("weather", "{not json", id="toolu_1"))

    error = complete_error(fake_provider.spec("anthropic"), tools_request())

    assert isinstance(error, TransientError)
    assert "malformed tool call" in error.message


def test_streamed_tool_arguments_that_are_not_json_are_a_transient_provider_error(fake_provider):
    fake_provider.script("claude", Reply.tool_call("weather", '{"city": "Par', id="toolu_1"))

    _, error = stream_error(fake_provider.spec("anthropic"), tools_request())

    assert isinstance(error, TransientError)
    assert "weather arguments are not a JSON object" in error.message


def test_usage_counts_cache_reads_as_cached_input(fake_provider):
    fake_provider.script("claude", Reply.ok("ok", input_tokens=100, output_tokens=3, cached_tokens=60))

    usage = complete(fake_provider.spec("anthropic"), request("claude")).usage

    assert usage == Usage(input_tokens=100, output_tokens=3, cached_tokens=60)


def test_max_tokens_as_the_stop_reason_is_length(fake_provider):
    fake_provider.script("claude", Reply.ok("cut", finish_reason="length"))

    assert complete(fake_provider.spec("anthropic"), request("claude")).finish_reason == "length"


def test_reasoning_effort_asks_for_extended_thinking_on_top_of_the_answers_allowance(fake_provider):
    req = request("claude", max_tokens=500, chat=chat_options({"reasoning_effort": "medium"}))

    complete(fake_provider.spec("anthropic"), req)

    body = fake_provider.history[0].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert body["max_tokens"] == 500 + 8192


def test_logprobs_and_reasoning_effort_with_tools_are_refused_naming_the_param():
    assert chat_refusal(ChatOptions(logprobs=True))[0] == "logprobs"  # type: ignore[index]
    assert (
        chat_refusal(chat_options({"tools": [WEATHER], "reasoning_effort": "low"}))[0] == "reasoning_effort"
    )  # type: ignore[index]
    assert chat_refusal(chat_options({"reasoning_effort": "low"})) is None
    assert chat_refusal(chat_options({"tools": [WEATHER], "n": 3, "tool_choice": "required"})) is None


def test_tool_results_given_as_json_text_are_sent_as_that_text(fake_provider):
    complete(fake_provider.spec("anthropic"), tools_request(an_openai_agent_turn()))

    result = fake_provider.history[0].body["messages"][2]["content"][1]
    assert json.loads(result["content"]) == {"celsius": 24}


def test_an_unknown_part_type_is_refused_naming_the_part(fake_provider):
    messages = [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]

    with pytest.raises(InvalidRequest) as caught:
        complete(fake_provider.spec("anthropic"), request("claude", messages=messages))

    assert caught.value.param == "messages[0].content[0].type"
    assert fake_provider.history == []


def test_an_empty_tool_result_is_sent_without_content(fake_provider):
    messages = an_openai_agent_turn()
    messages[-1]["content"] = ""

    complete(fake_provider.spec("anthropic"), tools_request(messages))

    assert fake_provider.history[0].body["messages"][2]["content"][1] == {
        "type": "tool_result",
        "tool_use_id": "call_R0me",
    }
