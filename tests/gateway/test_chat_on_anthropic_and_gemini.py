"""The chat API through the gateway with the official `openai` client, answered by Anthropic
and Gemini models on their own wires: tool calls plain and streamed (the SDK's stream helper
assembling them), an agent loop, parsed pydantic tools, images and n."""

import json

import openai
import pytest
from pydantic import BaseModel

from gateway.services import api_key_create
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)

KINDS = ["anthropic", "gemini"]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PIXEL_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture
def client(live_url) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{live_url}/v1", api_key=api_key_create(name="agent")[1], max_retries=0, timeout=20
    )


def model_of(fake_provider, kind: str) -> str:
    fake_provider.model("m", kind=kind, capabilities=["tool_use", "vision"])
    return "m"


@pytest.mark.parametrize("kind", KINDS)
def test_a_tool_call_comes_back_in_openais_shape(client, fake_provider, kind):
    model = model_of(fake_provider, kind)
    fake_provider.script("m", Reply.tool_call("get_weather", {"city": "Paris"}, id="toolu_1"))

    completion = client.chat.completions.create(
        model=model, messages=ASK, tools=[WEATHER_TOOL], tool_choice="required"
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    assert call.id == "toolu_1" if kind == "anthropic" else call.id.startswith("call_")


@pytest.mark.parametrize("kind", KINDS)
def test_the_stream_helper_assembles_the_streamed_calls(client, fake_provider, kind):
    model = model_of(fake_provider, kind)
    fake_provider.script(
        "m",
        Reply.tool_calls_of(
            {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}},
            {"id": "toolu_2", "name": "get_weather", "arguments": {"city": "Rome"}},
            text="Checking.",
        ),
    )

    with client.chat.completions.stream(model=model, messages=ASK, tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Checking."
    assert [json.loads(c.function.arguments)["city"] for c in choice.message.tool_calls] == ["Paris", "Rome"]
    assert len({c.id for c in choice.message.tool_calls}) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_an_agent_loop_sends_the_tool_result_back_and_gets_the_answer(client, fake_provider, kind):
    model = model_of(fake_provider, kind)
    fake_provider.script(
        "m", Reply.tool_call("get_weather", {"city": "Paris"}, id="toolu_1"), Reply.ok("Sunny.")
    )
    messages = list(ASK)

    first = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    call = first.choices[0].message.tool_calls[0]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"sky": "sunny"}'},
    ]
    second = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])

    assert second.choices[0].message.content == "Sunny."
    body = fake_provider.requests_for("m")[1].body
    if kind == "anthropic":
        assert body["messages"][-1]["content"] == [
            {"type": "tool_result", "tool_use_id": call.id, "content": '{"sky": "sunny"}'}
        ]
    else:
        assert body["contents"][-1]["parts"] == [
            {"functionResponse": {"name": "get_weather", "response": {"sky": "sunny"}}}
        ]


class GetWeather(BaseModel):
    city: str


@pytest.mark.parametrize("kind", KINDS)
def test_parse_with_a_strict_pydantic_tool_gets_parsed_arguments(client, fake_provider, kind):
    model = model_of(fake_provider, kind)
    fake_provider.script("m", Reply.tool_call("GetWeather", {"city": "Paris"}))

    completion = client.chat.completions.parse(
        model=model, messages=ASK, tools=[openai.pydantic_function_tool(GetWeather)]
    )

    assert completion.choices[0].message.tool_calls[0].function.parsed_arguments == GetWeather(city="Paris")


@pytest.mark.parametrize("kind", KINDS)
def test_an_image_part_reaches_the_model_in_its_wires_shape(client, fake_provider, kind):
    model = model_of(fake_provider, kind)
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL_B64}"}},
    ]

    client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])

    assert fake_provider.history[0].images() == [
        {"source": "base64", "media_type": "image/png", "data": PIXEL_B64}
    ]


@pytest.mark.parametrize(("kind", "calls"), [("anthropic", 2), ("gemini", 1)])
def test_n_two_gives_two_choices(client, fake_provider, kind, calls):
    model = model_of(fake_provider, kind)

    completion = client.chat.completions.create(model=model, messages=ASK, n=2)

    assert [c.index for c in completion.choices] == [0, 1]
    assert len(fake_provider.requests_for("m")) == calls
