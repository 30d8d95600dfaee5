"""The fake provider answers tool calls, n and logprobs in each wire's own shape, as the real
SDKs parse them (plain, and streamed as incremental deltas their helpers assemble)."""

from __future__ import annotations

import anthropic
import openai

from tests.fake_provider import FAKE_KEY, Reply

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def openai_client(fake_provider) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake_provider.base_url("openai"), api_key=FAKE_KEY, max_retries=0)


def anthropic_client(fake_provider) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake_provider.base_url("anthropic"), api_key=FAKE_KEY, max_retries=0)


def test_openai_tool_calls_parse_in_the_sdk(fake_provider):
    fake_provider.script(
        "m",
        Reply.tool_calls_of(
            {"id": "call_a", "name": "weather", "arguments": {"city": "Paris"}},
            {"id": "call_b", "name": "weather", "arguments": {"city": "Rome"}},
        ),
    )
    r = openai_client(fake_provider).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Paris and Rome?"}], tools=[WEATHER]
    )
    assert r.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.arguments) for c in r.choices[0].message.tool_calls] == [
        ("call_a", '{"city": "Paris"}'),
        ("call_b", '{"city": "Rome"}'),
    ]
    assert fake_provider.requests_for("m")[0].body["tools"] == [WEATHER]


def test_openai_streamed_tool_calls_are_assembled_by_the_sdk_stream_helper(fake_provider):
    fake_provider.script("m", Reply.tool_call("weather", {"city": "Oslo"}, id="call_x"))
    with openai_client(fake_provider).chat.completions.stream(
        model="m", messages=[{"role": "user", "content": "Oslo?"}], tools=[WEATHER]
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == ("call_x", "weather", '{"city": "Oslo"}')
    assert final.choices[0].finish_reason == "tool_calls"


def test_openai_n_and_logprobs(fake_provider):
    fake_provider.script("m", Reply.ok("one two"))
    r = openai_client(fake_provider).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], n=3, logprobs=True, top_logprobs=2
    )
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert [t.token for t in r.choices[0].logprobs.content] == ["one", " two"]
    assert len(r.choices[0].logprobs.content[0].top_logprobs) == 2


def test_anthropic_tool_use_parses_in_the_sdk_plain_and_streamed(fake_provider):
    fake_provider.script(
        "claude",
        Reply.tool_call("weather", {"city": "Lima"}, id="toolu_1", text="Checking."),
        Reply.tool_call("weather", {"city": "Lima"}, id="toolu_2"),
    )
    client = anthropic_client(fake_provider)
    tools = [{"name": "weather", "input_schema": {"type": "object"}}]
    message = client.messages.create(
        model="claude", max_tokens=50, messages=[{"role": "user", "content": "Lima?"}], tools=tools
    )
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[1].input == {"city": "Lima"}
    with client.messages.stream(
        model="claude", max_tokens=50, messages=[{"role": "user", "content": "Lima?"}], tools=tools
    ) as stream:
        final = stream.get_final_message()
    tool_use = next(b for b in final.content if b.type == "tool_use")
    assert (tool_use.id, tool_use.input) == ("toolu_2", {"city": "Lima"})
    assert final.stop_reason == "tool_use"


def test_tool_results_count_as_input_text(fake_provider):
    messages = [
        {"role": "user", "content": "Lima?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "weather", "input": {}}]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "warm and dry"}],
        },
    ]
    message = anthropic_client(fake_provider).messages.create(
        model="claude", max_tokens=50, messages=messages
    )
    assert message.content[0].text == "Echo: warm and dry"
