"""The whole chat API through the gateway with the official `openai` client (sync, async,
streamed, the stream and parse helpers): tool calls, n choices, logprobs, images and usage
details, answered by the fake provider on the OpenAI wire."""

import asyncio
import json

import httpx
import openai
import pytest
from pydantic import BaseModel

from gateway.services import api_key_create
from metrics.models import CallRecord
from routing.services import route_update_prompt
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PARIS = {"city": "Paris"}
PIXEL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def alpha(fake_provider):
    return fake_provider.model("alpha", capabilities=["tool_use", "vision"])


@pytest.fixture
def raw_key() -> str:
    return api_key_create(name="agent")[1]


@pytest.fixture
def client(live_url, raw_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key=raw_key, max_retries=0, timeout=20)


def test_a_tool_call_comes_back_in_openais_shape(client, alpha, fake_provider):
    fake_provider.script("alpha", Reply.tool_call("get_weather", PARIS, id="call_w1"))
    completion = client.chat.completions.create(
        model="alpha", messages=ASK, tools=[WEATHER_TOOL], tool_choice="auto", parallel_tool_calls=False
    )
    (choice,) = completion.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert (call.id, call.type, call.function.name) == ("call_w1", "function", "get_weather")
    assert json.loads(call.function.arguments) == PARIS
    (received,) = fake_provider.requests_for("alpha")
    assert received.body["tools"] == [WEATHER_TOOL]
    assert (received.body["tool_choice"], received.body["parallel_tool_calls"]) == ("auto", False)
    (record,) = CallRecord.objects.all()
    assert "get_weather" in record.response_text


def test_an_agent_loop_sends_the_tool_result_back_and_gets_the_answer(client, alpha, fake_provider):
    fake_provider.script(
        "alpha", Reply.tool_call("get_weather", PARIS, id="call_w1"), Reply.ok("It is sunny in Paris.")
    )
    messages: list = list(ASK)
    first = client.chat.completions.create(model="alpha", messages=messages, tools=[WEATHER_TOOL])
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": "call_w1", "content": '{"sky": "sunny"}'})
    second = client.chat.completions.create(model="alpha", messages=messages, tools=[WEATHER_TOOL])
    assert (second.choices[0].message.content, second.choices[0].finish_reason) == (
        "It is sunny in Paris.",
        "stop",
    )
    sent = fake_provider.requests_for("alpha")[1].body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_w1"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_w1", "content": '{"sky": "sunny"}'}


def test_the_stream_helper_assembles_streamed_tool_calls(client, alpha, fake_provider):
    fake_provider.script(
        "alpha",
        Reply.tool_calls_of(
            {"id": "call_a", "name": "get_weather", "arguments": PARIS},
            {"id": "call_b", "name": "get_weather", "arguments": {"city": "Lyon"}},
        ),
    )
    with client.chat.completions.stream(model="alpha", messages=ASK, tools=[WEATHER_TOOL]) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.delta" in kinds
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("call_a", "get_weather", PARIS),
        ("call_b", "get_weather", {"city": "Lyon"}),
    ]


def test_streamed_tool_calls_are_openais_incremental_deltas(live_url, raw_key, alpha, fake_provider):
    fake_provider.script("alpha", Reply.tool_call("get_weather", PARIS, id="call_w1"))
    body = {"model": "alpha", "messages": ASK, "tools": [WEATHER_TOOL], "stream": True}
    response = httpx.post(
        f"{live_url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {raw_key}"}
    )
    chunks = [json.loads(e[6:]) for e in response.text.split("\n\n") if e.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    pieces = [d["tool_calls"] for d in deltas if "tool_calls" in d]
    assert pieces[0] == [
        {
            "index": 0,
            "id": "call_w1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
    ]
    assert all(
        p[0].keys() == {"index", "function"} and p[0]["function"].keys() == {"arguments"} for p in pieces[1:]
    )
    assert json.loads("".join(p[0]["function"]["arguments"] for p in pieces)) == PARIS
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


class Weather(BaseModel):
    city: str
    temp_c: int


def test_parse_with_a_pydantic_model_gets_the_parsed_object(client, alpha, fake_provider):
    fake_provider.script("alpha", Reply.ok('{"city": "Paris", "temp_c": 21}'))
    completion = client.chat.completions.parse(model="alpha", messages=ASK, response_format=Weather)
    assert completion.choices[0].message.parsed == Weather(city="Paris", temp_c=21)
    sent = fake_provider.requests_for("alpha")[0].body["response_format"]
    assert (sent["type"], sent["json_schema"]["name"]) == ("json_schema", "Weather")


class GetWeather(BaseModel):
    city: str


def test_parse_with_a_pydantic_function_tool_gets_parsed_arguments(client, alpha, fake_provider):
    fake_provider.script("alpha", Reply.tool_call("GetWeather", PARIS))
    completion = client.chat.completions.parse(
        model="alpha", messages=ASK, tools=[openai.pydantic_function_tool(GetWeather)]
    )
    (call,) = completion.choices[0].message.tool_calls
    assert call.function.parsed_arguments == GetWeather(city="Paris")
    assert fake_provider.requests_for("alpha")[0].body["tools"][0]["function"]["strict"] is True


def test_n_choices_come_from_one_request(client, alpha, fake_provider):
    completion = client.chat.completions.create(model="alpha", messages=ASK, n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert {c.message.content for c in completion.choices} == {"Echo: What is the weather in Paris?"}
    (received,) = fake_provider.requests_for("alpha")
    assert received.body["n"] == 3
    assert completion.usage.completion_tokens == 3 * 7


def test_logprobs_are_passed_back(client, alpha, fake_provider):
    completion = client.chat.completions.create(model="alpha", messages=ASK, logprobs=True, top_logprobs=2)
    content = completion.choices[0].logprobs.content
    assert "".join(t.token for t in content) == "Echo: What is the weather in Paris?"
    assert all(len(t.top_logprobs) == 2 for t in content)


def test_cached_token_details_are_in_the_usage(client, alpha, fake_provider):
    fake_provider.script("alpha", Reply.ok("fine", cached_tokens=4))
    usage = client.chat.completions.create(model="alpha", messages=ASK).usage
    assert usage.prompt_tokens_details.cached_tokens == 4


def test_an_image_part_reaches_a_vision_model_as_it_was_sent(client, alpha, fake_provider):
    image = {"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}]
    client.chat.completions.create(model="alpha", messages=messages)
    (received,) = fake_provider.requests_for("alpha")
    assert received.body["messages"][0]["content"][1] == image
    (record,) = CallRecord.objects.all()
    assert "[image: image/png" in record.request_text and "base64" not in record.request_text


def test_the_async_client_calls_tools_through_a_chain(live_url, raw_key, alpha, fake_provider):
    FallbackChainFactory(name="agents", models=[alpha])
    fake_provider.script(
        "alpha", Reply.tool_call("get_weather", PARIS), Reply.tool_call("get_weather", PARIS)
    )

    async def run():
        async with openai.AsyncOpenAI(base_url=f"{live_url}/v1", api_key=raw_key, max_retries=0) as client:
            plain = await client.chat.completions.create(
                model="chain:agents", messages=ASK, tools=[WEATHER_TOOL]
            )
            async with client.chat.completions.stream(
                model="chain:agents", messages=ASK, tools=[WEATHER_TOOL]
            ) as stream:
                streamed = await stream.get_final_completion()
        return plain, streamed

    plain, streamed = asyncio.run(run())
    for completion in (plain, streamed):
        assert completion.model == "alpha"
        assert json.loads(completion.choices[0].message.tool_calls[0].function.arguments) == PARIS


def test_an_agent_loop_through_a_route_streams_and_keeps_the_whole_conversation(client, alpha, fake_provider):
    route = TaskRouteFactory(task_type="assistant", model=alpha)
    route_update_prompt(route=route, system_prompt="You help with the weather.", user=None)
    fake_provider.script("alpha", Reply.tool_call("get_weather", PARIS, id="call_r1"), Reply.ok("Sunny."))
    with client.chat.completions.stream(
        model="route:assistant", messages=ASK, tools=[WEATHER_TOOL]
    ) as stream:
        first = stream.get_final_completion().choices[0].message
    assert first.tool_calls[0].id == "call_r1"
    turn = [
        *ASK,
        first.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_r1", "content": "sun"},
    ]
    answer = client.chat.completions.create(model="route:assistant", messages=turn, tools=[WEATHER_TOOL])
    assert answer.choices[0].message.content == "Sunny."
    sent = fake_provider.requests_for("alpha")[1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[0]["content"] == "You help with the weather."
    assert json.loads(sent[2]["tool_calls"][0]["function"]["arguments"]) == PARIS


def test_an_agent_conversation_falls_over_from_an_openai_model_to_an_anthropic_one(
    client, alpha, fake_provider
):
    claude = fake_provider.model("claude", kind="anthropic", capabilities=["tool_use", "vision"])
    FallbackChainFactory(name="mixed", models=[alpha, claude])
    fake_provider.script("alpha", Reply.tool_call("get_weather", PARIS, id="call_x1"))
    first = client.chat.completions.create(model="chain:mixed", messages=ASK, tools=[WEATHER_TOOL])
    assert first.model == "alpha"
    fake_provider.set_default("alpha", Reply.model_not_found())
    fake_provider.script("claude", Reply.ok("Sunny in Paris."))
    turn = [*ASK, first.choices[0].message.model_dump(exclude_none=True)]
    turn.append({"role": "tool", "tool_call_id": "call_x1", "content": "sunny"})
    raw = client.chat.completions.with_raw_response.create(
        model="chain:mixed", messages=turn, tools=[WEATHER_TOOL]
    )
    answer = raw.parse()
    assert (answer.model, answer.choices[0].message.content) == ("claude", "Sunny in Paris.")
    assert raw.headers["x-orchestrator-attempts"] == "2"
    (received,) = fake_provider.requests_for("claude")
    assistant, results = received.body["messages"][1:]
    assert assistant["content"][-1] == {
        "type": "tool_use",
        "id": "call_x1",
        "name": "get_weather",
        "input": PARIS,
    }
    assert results["role"] == "user"
    assert (
        results["content"][0]["type"] == "tool_result" and results["content"][0]["tool_use_id"] == "call_x1"
    )
    assert received.body["tools"][0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]


def test_an_anthropic_models_streamed_tool_use_arrives_as_openai_tool_call_deltas(client, fake_provider):
    fake_provider.model("claude", kind="anthropic", capabilities=["tool_use"])
    fake_provider.script("claude", Reply.tool_call("get_weather", PARIS, id="toolu_01", text="Let me check."))
    with client.chat.completions.stream(model="claude", messages=ASK, tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert (choice.finish_reason, choice.message.content) == ("tool_calls", "Let me check.")
    (call,) = choice.message.tool_calls
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "toolu_01",
        "get_weather",
        PARIS,
    )
    assert fake_provider.requests_for("claude")[0].wire == "anthropic"


def test_logprobs_pass_an_anthropic_model_over_for_one_that_has_them(client, alpha, fake_provider):
    claude = fake_provider.model("claude", kind="anthropic")
    FallbackChainFactory(name="mixed", models=[claude, alpha])
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="claude", messages=ASK, logprobs=True)
    assert (refused.value.body["param"], refused.value.body["code"]) == ("logprobs", "unsupported_parameter")
    assert "anthropic" in refused.value.message
    completion = client.chat.completions.create(model="chain:mixed", messages=ASK, logprobs=True)
    assert completion.model == "alpha" and completion.choices[0].logprobs.content
    assert fake_provider.requests_for("claude") == []


def test_n_choices_from_a_kind_without_native_n_are_parallel_attempts(client, fake_provider):
    fake_provider.model("claude", kind="anthropic")
    fake_provider.script("claude", Reply.ok("one"), Reply.ok("two"), Reply.ok("three"))
    completion = client.chat.completions.create(model="claude", messages=ASK, n=3)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert sorted(c.message.content for c in completion.choices) == ["one", "three", "two"]
    assert len(fake_provider.requests_for("claude")) == 3
    assert CallRecord.objects.filter(model_name="claude", status="ok").count() == 3


def test_tools_for_a_model_without_tool_use_are_a_400_that_says_so(client, fake_provider):
    fake_provider.model("plain")
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="plain", messages=ASK, tools=[WEATHER_TOOL])
    assert "tool_use" in refused.value.message
    assert fake_provider.requests_for("plain") == []


def test_the_stream_helper_parses_a_pydantic_response_format(client, alpha, fake_provider):
    fake_provider.script("alpha", Reply.ok('{"city": "Paris", "temp_c": 21}'))
    with client.chat.completions.stream(model="alpha", messages=ASK, response_format=Weather) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Weather(city="Paris", temp_c=21)


def test_max_completion_tokens_wins_over_max_tokens(client, alpha, fake_provider):
    client.chat.completions.create(model="alpha", messages=ASK, max_tokens=50, max_completion_tokens=20)
    body = fake_provider.requests_for("alpha")[0].body
    assert 20 in (body.get("max_completion_tokens"), body.get("max_tokens"))
    assert 50 not in (body.get("max_completion_tokens"), body.get("max_tokens"))
