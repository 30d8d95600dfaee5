"""The Responses API through the gateway with the official `openai` client: create (string
input, instructions, structured output, the parse helper), stream (typed events, the final
response helper), a function-tool loop with the whole input and with previous_response_id,
answered by the fake provider on the OpenAI and the Anthropic wire."""

import json

import httpx
import openai
import pytest
from pydantic import BaseModel

from gateway.services import api_key_create
from metrics.models import CallRecord
from routing.services import route_update_prompt
from tests.factories import TaskRouteFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
PARIS = {"city": "Paris"}


@pytest.fixture
def alpha(fake_provider):
    return fake_provider.model("alpha", capabilities=["tool_use", "vision"])


@pytest.fixture
def client(live_url) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{live_url}/v1", api_key=api_key_create(name="agent")[1], max_retries=0, timeout=20
    )


def test_a_string_input_gets_a_response_with_its_output_text(client, alpha, fake_provider):
    fake_provider.script("alpha", Reply.ok("Bonjour."))

    response = client.responses.create(model="alpha", input="Say hello in French.")

    assert response.id.startswith("resp_") and response.object == "response"
    assert (response.status, response.model, response.output_text) == ("completed", "alpha", "Bonjour.")
    (item,) = response.output
    assert (item.type, item.role, item.status) == ("message", "assistant", "completed")
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens > 0
    (sent,) = fake_provider.requests_for("alpha")
    assert sent.body["messages"] == [{"role": "user", "content": "Say hello in French."}]
    (record,) = CallRecord.objects.all()
    assert record.endpoint == "responses"


def test_instructions_go_first_as_a_system_message_and_are_echoed(client, alpha, fake_provider):
    response = client.responses.create(
        model="alpha", instructions="Answer in one word.", input="Capital of France?", temperature=0.2
    )

    assert (response.instructions, response.temperature) == ("Answer in one word.", 0.2)
    (sent,) = fake_provider.requests_for("alpha")
    assert sent.body["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert sent.body["temperature"] == 0.2


class Weather(BaseModel):
    city: str
    temp_c: int


def test_a_json_schema_text_format_reaches_the_model_as_its_response_format(client, alpha, fake_provider):
    fake_provider.script("alpha", Reply.ok('{"city": "Paris", "temp_c": 21}'))
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temp_c": {"type": "integer"}},
        "required": ["city", "temp_c"],
        "additionalProperties": False,
    }

    response = client.responses.create(
        model="alpha",
        input="Weather in Paris?",
        text={"format": {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}},
    )

    assert json.loads(response.output_text) == {"city": "Paris", "temp_c": 21}
    assert response.text.format.type == "json_schema"
    sent = fake_provider.requests_for("alpha")[0].body["response_format"]
    assert sent == {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": schema, "strict": True},
    }


def test_the_parse_helper_gets_the_parsed_object(client, alpha, fake_provider):
    fake_provider.script("alpha", Reply.ok('{"city": "Paris", "temp_c": 21}'))

    response = client.responses.parse(model="alpha", input="Weather in Paris?", text_format=Weather)

    assert response.output_parsed == Weather(city="Paris", temp_c=21)
    sent = fake_provider.requests_for("alpha")[0].body["response_format"]
    assert (sent["type"], sent["json_schema"]["name"]) == ("json_schema", "Weather")


def test_a_json_object_format_is_passed_on(client, alpha, fake_provider):
    fake_provider.script("alpha", Reply.ok('{"ok": true}'))
    client.responses.create(model="alpha", input="JSON please", text={"format": {"type": "json_object"}})
    assert fake_provider.requests_for("alpha")[0].body["response_format"] == {"type": "json_object"}


def test_the_token_limit_makes_the_response_incomplete(client, alpha, fake_provider):
    fake_provider.script("alpha", Reply.ok("It was a dark and", finish_reason="length"))

    response = client.responses.create(model="alpha", input="Tell a story.", max_output_tokens=5)

    assert (response.status, response.incomplete_details.reason) == ("incomplete", "max_output_tokens")
    assert response.max_output_tokens == 5
    body = fake_provider.requests_for("alpha")[0].body
    assert 5 in (body.get("max_completion_tokens"), body.get("max_tokens"))


def test_the_stream_helper_gets_text_deltas_and_the_final_response(client, alpha, fake_provider):
    fake_provider.script("alpha", Reply.ok("Paris is the capital of France."))

    with client.responses.stream(model="alpha", input="Capital of France?") as stream:
        events = list(stream)
        final = stream.get_final_response()

    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "Paris is the capital of France."
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert (final.status, final.output_text, final.model) == (
        "completed",
        "Paris is the capital of France.",
        "alpha",
    )
    assert final.usage.output_tokens > 0
    (record,) = CallRecord.objects.all()
    assert (record.endpoint, record.status) == ("responses", "ok")


def test_each_streamed_event_has_an_event_line_naming_its_type(live_url, alpha, fake_provider):
    raw = api_key_create(name="raw")[1]
    response = httpx.post(
        f"{live_url}/v1/responses",
        headers={"authorization": f"Bearer {raw}"},
        json={"model": "alpha", "input": "hi there", "stream": True},
    )

    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in response.text.split("\n\n") if b.strip()]
    for block in blocks:
        event_line, data_line = block.split("\n")
        assert event_line.removeprefix("event: ") == json.loads(data_line.removeprefix("data: "))["type"]
    assert response.headers["x-orchestrator-model"] == "alpha"


def test_a_streamed_function_call_comes_as_argument_deltas(client, alpha, fake_provider):
    fake_provider.script("alpha", Reply.tool_call("get_weather", PARIS, id="call_w1"))

    with client.responses.stream(model="alpha", input="Weather in Paris?", tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()

    assert "response.function_call_arguments.delta" in {e.type for e in events}
    (done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(done.arguments) == PARIS
    (call,) = final.output
    assert (call.type, call.call_id, call.name, call.status) == (
        "function_call",
        "call_w1",
        "get_weather",
        "completed",
    )
    assert json.loads(call.arguments) == PARIS


def tool_loop_first_turn(client, model: str, fake_provider):
    fake_provider.script(
        model, Reply.tool_call("get_weather", PARIS, id="call_w1"), Reply.ok("It is sunny in Paris.")
    )
    first = client.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER_TOOL])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert (call.name, json.loads(call.arguments)) == ("get_weather", PARIS)
    return first, call


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_function_tool_loop_with_the_whole_input_gets_the_answer(client, fake_provider, kind):
    fake_provider.model("m", kind=kind, capabilities=["tool_use"])
    first, call = tool_loop_first_turn(client, "m", fake_provider)

    second = client.responses.create(
        model="m",
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            *[item.model_dump(exclude_none=True) for item in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "sunny"}'},
        ],
        tools=[WEATHER_TOOL],
    )

    assert (second.output_text, second.status) == ("It is sunny in Paris.", "completed")
    sent = fake_provider.requests_for("m")[1]
    assert "sunny" in json.dumps(sent.body["messages"])
    assert "call_w1" in json.dumps(sent.body["messages"])


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_function_tool_loop_with_previous_response_id_gets_the_answer(client, fake_provider, kind):
    fake_provider.model("m", kind=kind, capabilities=["tool_use"])
    first, call = tool_loop_first_turn(client, "m", fake_provider)

    second = client.responses.create(
        model="m",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "sunny"}'}],
        tools=[WEATHER_TOOL],
    )

    assert second.output_text == "It is sunny in Paris."
    assert second.previous_response_id == first.id
    first_sent, second_sent = (r.body["messages"] for r in fake_provider.requests_for("m"))
    assert len(json.dumps(second_sent)) > len(json.dumps(first_sent))
    assert "Weather in Paris?" in json.dumps(second_sent) and "sunny" in json.dumps(second_sent)


def test_previous_response_id_continues_the_conversation_without_its_instructions(
    client, alpha, fake_provider
):
    fake_provider.script("alpha", Reply.ok("Hello, Ada."), Reply.ok("Your name is Ada."))
    first = client.responses.create(model="alpha", instructions="Be brief.", input="My name is Ada.")

    client.responses.create(model="alpha", previous_response_id=first.id, input="What is my name?")

    assert fake_provider.requests_for("alpha")[1].body["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hello, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]


PIXEL_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_an_image_part_reaches_the_model_on_its_own_wire(client, fake_provider, kind):
    fake_provider.model("eyes", kind=kind, capabilities=["vision"])
    pixel = f"data:image/png;base64,{PIXEL_B64}"
    client.responses.create(
        model="eyes",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": pixel, "detail": "low"},
                ],
            }
        ],
    )
    (sent,) = fake_provider.requests_for("eyes")
    assert sent.images() == [{"source": "base64", "media_type": "image/png", "data": PIXEL_B64}]


def test_an_anthropic_model_answers_and_streams(client, fake_provider):
    fake_provider.model("claude", kind="anthropic")
    fake_provider.script("claude", Reply.ok("Bonjour."), Reply.ok("Salut."))

    answered = client.responses.create(model="claude", input="Hello in French?")
    with client.responses.stream(model="claude", input="Hi in French?") as stream:
        final = stream.get_final_response()

    assert (answered.output_text, answered.model) == ("Bonjour.", "claude")
    assert final.output_text == "Salut."
    assert fake_provider.requests_for("claude")[0].path.endswith("/v1/messages")


def test_a_route_runs_a_streamed_tool_loop_with_previous_response_id(client, alpha, fake_provider):
    route = TaskRouteFactory(task_type="assistant", model=alpha)
    route_update_prompt(route=route, system_prompt="You help with the weather.", user=None)
    fake_provider.script("alpha", Reply.tool_call("get_weather", PARIS, id="call_r1"), Reply.ok("Sunny."))
    with client.responses.stream(
        model="route:assistant", input="Weather in Paris?", tools=[WEATHER_TOOL]
    ) as s:
        first = s.get_final_response()

    answer = client.responses.create(
        model="route:assistant",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_r1", "output": "sun"}],
        tools=[WEATHER_TOOL],
    )

    assert answer.output_text == "Sunny."
    sent = fake_provider.requests_for("alpha")[1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[0]["content"] == "You help with the weather."
    assert json.loads(sent[2]["tool_calls"][0]["function"]["arguments"]) == PARIS
