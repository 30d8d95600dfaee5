"""POST /v1/messages through the official `anthropic` client against the live gateway
(uvicorn): `messages.create`, `messages.stream` (its text stream and final-message helper),
tool use and a tool loop, images, a route and a chain, each answered once by an Anthropic-kind
model and once by an OpenAI-style one on the fake provider."""

import json
import socket
import threading
from decimal import Decimal
from urllib.parse import urlsplit

import anthropic
import httpx
import pytest

from gateway.services import api_key_create
from metrics.models import CallRecord
from routing.orchestrator import records_flush
from routing.services import route_update_prompt
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)

KINDS = ["anthropic", "openai"]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PIXEL_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture
def raw_key() -> str:
    return api_key_create(name="claude-tool")[1]


@pytest.fixture
def client(live_url, raw_key) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live_url, api_key=raw_key, max_retries=0, timeout=20)


def model_of(fake_provider, kind: str, name: str = "m") -> str:
    fake_provider.model(name, kind=kind, capabilities=["tool_use", "vision"])
    return name


def records(**filters) -> list[CallRecord]:
    return list(CallRecord.objects.filter(**filters).order_by("id"))


def system_sent(received) -> str:
    """The system prompt as the provider's wire carried it."""
    if received.wire == "anthropic":
        return received.body["system"]
    return next(m["content"] for m in received.body["messages"] if m["role"] == "system")


@pytest.mark.parametrize("kind", KINDS)
def test_messages_create_answers_in_anthropics_shape_and_records_the_endpoint(client, fake_provider, kind):
    model = model_of(fake_provider, kind)

    raw = client.messages.with_raw_response.create(
        model=model,
        max_tokens=64,
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        messages=ASK,
    )

    message = raw.parse()
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == "m" and message.stop_reason == "end_turn" and message.stop_sequence is None
    (block,) = message.content
    assert block.type == "text" and block.text == "Echo: What is the weather in Paris?"
    assert (message.usage.output_tokens, message.usage.input_tokens) == (7, 10)  # a word a token
    (received,) = fake_provider.requests_for("m")
    assert system_sent(received) == "Be brief.\n\nBe kind."
    trace = raw.headers["x-orchestrator-trace-id"]
    assert raw.headers["x-orchestrator-model"] == "m" and raw.headers["x-orchestrator-attempts"] == "1"
    (record,) = records(trace_id=trace)
    assert (record.endpoint, record.source, record.status) == ("messages", "gateway", "ok")


@pytest.mark.parametrize("kind", KINDS)
def test_messages_stream_gives_the_text_stream_and_the_final_message(client, fake_provider, kind):
    model = model_of(fake_provider, kind)

    with client.messages.stream(model=model, max_tokens=64, messages=ASK) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert "".join(pieces) == "Echo: What is the weather in Paris?" and len(pieces) > 1
    assert final.content[0].text == "".join(pieces)
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 7
    (record,) = records()
    assert (record.endpoint, record.status) == ("messages", "ok")


@pytest.mark.parametrize("kind", KINDS)
def test_a_tool_call_comes_back_as_a_tool_use_block(client, fake_provider, kind):
    model = model_of(fake_provider, kind)
    fake_provider.script("m", Reply.tool_call("get_weather", {"city": "Paris"}, id="toolu_w1"))

    message = client.messages.create(
        model=model, max_tokens=64, messages=ASK, tools=[WEATHER], tool_choice={"type": "any"}
    )

    assert message.stop_reason == "tool_use"
    (call,) = message.content
    assert (call.type, call.name, call.input) == ("tool_use", "get_weather", {"city": "Paris"})
    assert call.id == "toolu_w1" if kind == "anthropic" else call.id
    (received,) = fake_provider.requests_for("m")
    if kind == "anthropic":
        assert received.body["tools"] == [WEATHER] and received.body["tool_choice"] == {"type": "any"}
    else:
        function = received.body["tools"][0]["function"]
        assert (function["name"], function["parameters"]) == ("get_weather", WEATHER["input_schema"])
        assert received.body["tool_choice"] == "required"


@pytest.mark.parametrize("kind", KINDS)
def test_streamed_tool_calls_arrive_as_input_json_deltas(client, fake_provider, kind):
    model = model_of(fake_provider, kind)
    fake_provider.script(
        "m",
        Reply.tool_calls_of(
            {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}},
            {"id": "toolu_2", "name": "get_weather", "arguments": {"city": "Rome"}},
            text="Checking.",
        ),
    )

    with client.messages.stream(
        model=model,
        max_tokens=64,
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "auto", "disable_parallel_tool_use": False},
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()

    assert "input_json" in kinds and kinds[-1] == "message_stop"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[0].text == "Checking."
    assert [b.input for b in final.content[1:]] == [{"city": "Paris"}, {"city": "Rome"}]
    assert final.stop_reason == "tool_use"


@pytest.mark.parametrize("kind", KINDS)
def test_a_tool_loop_sends_the_result_back_and_gets_the_answer(client, fake_provider, kind):
    model = model_of(fake_provider, kind)
    fake_provider.script(
        "m",
        Reply.tool_call("get_weather", {"city": "Paris"}, id="toolu_w1"),
        Reply.ok("It is sunny in Paris."),
    )
    messages: list = list(ASK)

    first = client.messages.create(model=model, max_tokens=64, messages=messages, tools=[WEATHER])
    messages.append(
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]}
    )
    call_id = first.content[0].id
    messages.append(
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call_id,
                    "content": [{"type": "text", "text": "sunny"}],
                },
                {"type": "text", "text": "Answer in one line."},
            ],
        }
    )
    second = client.messages.create(model=model, max_tokens=64, messages=messages, tools=[WEATHER])

    assert (second.content[0].text, second.stop_reason) == ("It is sunny in Paris.", "end_turn")
    sent = fake_provider.requests_for("m")[1].body["messages"]
    if kind == "anthropic":
        assert sent[1]["content"][0]["type"] == "tool_use" and sent[1]["content"][0]["input"] == {
            "city": "Paris"
        }
        result = sent[2]["content"][0]
        assert (result["type"], result["tool_use_id"], result["content"]) == ("tool_result", call_id, "sunny")
    else:
        assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
        assert sent[2] == {"role": "tool", "tool_call_id": call_id, "content": "sunny"}
        assert sent[3]["role"] == "user"


def test_a_tool_error_reaches_the_model_marked_as_an_error(client, fake_provider):
    model = model_of(fake_provider, "openai")
    messages = [
        *ASK,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_9", "content": "city missing", "is_error": True}
            ],
        },
    ]

    client.messages.create(model=model, max_tokens=64, messages=messages, tools=[WEATHER])

    sent = fake_provider.requests_for("m")[0].body["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": "toolu_9", "content": "Error: city missing"}


@pytest.mark.parametrize("kind", KINDS)
def test_image_blocks_reach_a_vision_model_in_its_wire(client, fake_provider, kind):
    model = model_of(fake_provider, kind)
    content = [
        {"type": "text", "text": "What are these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL_B64}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]

    client.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": content}])

    (received,) = fake_provider.requests_for("m")
    assert received.images() == [
        {"source": "base64", "media_type": "image/png", "data": PIXEL_B64},
        {"source": "url", "url": "https://example.com/cat.jpg"},
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_sampling_fields_reach_the_provider(client, fake_provider, kind):
    model = model_of(fake_provider, kind)

    client.messages.create(
        model=model,
        max_tokens=32,
        messages=ASK,
        stop_sequences=["END"],
        metadata={"user_id": "u-7"},
        extra_body={"temperature": 0.25, "top_p": 0.5},  # no longer parameters of the SDK's create
    )

    body = fake_provider.requests_for("m")[0].body
    if kind == "anthropic":  # its 2.x Messages API has no temperature or top_p (the kind's docs)
        assert (body["stop_sequences"], body["metadata"], body["max_tokens"]) == (
            ["END"],
            {"user_id": "u-7"},
            32,
        )
    else:
        assert (body["temperature"], body["top_p"]) == (0.25, 0.5)
        assert (body["stop"], body["user"], body["max_completion_tokens"]) == (["END"], "u-7", 32)


def test_max_tokens_cut_is_stop_reason_max_tokens(client, fake_provider):
    model = model_of(fake_provider, "openai")
    fake_provider.script("m", Reply.ok("a long answer", finish_reason="length"))

    assert client.messages.create(model=model, max_tokens=3, messages=ASK).stop_reason == "max_tokens"


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
def test_a_chain_falls_over_inside_the_endpoint(client, fake_provider, streamed):
    first = fake_provider.model("claude-a", kind="anthropic")
    second = fake_provider.model("gpt-b", kind="openai")
    FallbackChainFactory(name="pair", models=[first, second])
    fake_provider.script("claude-a", Reply.unauthorized())

    if streamed:
        with client.messages.stream(model="chain:pair", max_tokens=64, messages=ASK) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(model="chain:pair", max_tokens=64, messages=ASK)

    assert message.model == "gpt-b" and message.content[0].text.startswith("Echo:")
    assert [(r.model_name, r.status, r.endpoint) for r in records()] == [
        ("claude-a", "error", "messages"),
        ("gpt-b", "ok", "messages"),
    ]


def test_a_route_answers_with_its_prompt_first(client, fake_provider):
    route = TaskRouteFactory(task_type="weather", model=fake_provider.model("alpha"))
    route_update_prompt(route=route, system_prompt="You help with the weather.", user=None)

    message = client.messages.create(model="route:weather", max_tokens=64, system="Be brief.", messages=ASK)

    assert message.model == "alpha"
    sent = fake_provider.requests_for("alpha")[0].body["messages"]
    assert [m["content"] for m in sent if m["role"] == "system"] == [
        "You help with the weather.",
        "Be brief.",
    ]


def test_the_stream_is_anthropics_event_sequence(live_url, raw_key, fake_provider):
    model_of(fake_provider, "openai")
    fake_provider.script("m", Reply.tool_call("get_weather", {"city": "Paris"}, id="call_1", text="On it."))

    with httpx.stream(
        "POST",
        f"{live_url}/v1/messages",
        headers={"x-api-key": raw_key, "anthropic-version": "2023-06-01"},
        json={"model": "m", "max_tokens": 64, "messages": ASK, "tools": [WEATHER], "stream": True},
        timeout=20,
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("event: ")]

    names = [line.removeprefix("event: ") for line in lines]
    starts = [i for i, name in enumerate(names) if name == "content_block_start"]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    assert len(starts) == 2 and names.count("content_block_stop") == 2
    assert names[starts[1] - 1] == "content_block_stop"  # the text block closes before the tool's opens


def test_an_error_after_the_first_tokens_is_an_error_event(live_url, raw_key, fake_provider):
    model_of(fake_provider, "anthropic")
    fake_provider.script("m", Reply.stream_error(after_tokens=2))

    with httpx.stream(
        "POST",
        f"{live_url}/v1/messages",
        headers={"x-api-key": raw_key},
        json={"model": "m", "max_tokens": 64, "messages": ASK, "stream": True},
        timeout=20,
    ) as response:
        text = response.read().decode()

    assert response.status_code == 200 and "event: error" in text and "message_stop" not in text
    error = json.loads(text.split("event: error\ndata: ", 1)[1].split("\n", 1)[0])
    assert error["type"] == "error" and error["error"]["type"] in ("overloaded_error", "api_error")
    (record,) = records()
    assert (record.endpoint, record.status) == ("messages", "error")


def test_count_tokens_gives_the_engines_estimate_and_counts_nothing(live_url, fake_provider):
    model_of(fake_provider, "anthropic")
    key, raw = api_key_create(name="counter", rpm=1)
    client = anthropic.Anthropic(base_url=live_url, api_key=raw, max_retries=0, timeout=20)

    counts = [
        client.messages.count_tokens(model="m", system="Be brief.", messages=ASK).input_tokens,
        client.messages.count_tokens(model="m", messages=ASK, tools=[WEATHER]).input_tokens,
    ]

    # ~4 characters a token plus 4 a message; the tools' JSON text counts too.
    assert counts[0] == (len("Be brief.") + len(ASK[0]["content"]) + 3) // 4 + 8
    assert counts[1] > (len(ASK[0]["content"]) + 3) // 4 + 4
    assert not records()
    client.messages.create(model="m", max_tokens=16, messages=ASK)  # the rpm of 1 is still free
    assert records()[0].api_key_id == key.pk


@pytest.mark.parametrize("kind", KINDS)
def test_an_output_format_asks_the_model_for_json_of_that_schema(client, fake_provider, kind):
    model = model_of(fake_provider, kind)
    schema = {"type": "object", "properties": {"sky": {"type": "string"}}, "required": ["sky"]}
    fake_provider.script("m", Reply.ok('{"sky": "clear"}'))

    message = client.messages.create(
        model=model,
        max_tokens=64,
        messages=ASK,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )

    assert json.loads(message.content[0].text) == {"sky": "clear"}
    body = fake_provider.requests_for("m")[0].body
    if kind == "anthropic":
        assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    else:
        assert body["response_format"]["json_schema"]["schema"] == schema


def test_an_abandoned_stream_is_recorded_as_cancelled_and_gives_its_reservation_back(live_url, fake_provider):
    fake_provider.model("m", input_cost_per_1k=Decimal("1"), output_cost_per_1k=Decimal("1"))
    fake_provider.script("m", Reply.slow(token_interval_s=0.5, text=" ".join(["word"] * 40)))
    key, raw = api_key_create(name="budgeted", budget_usd=Decimal("1"), budget_period="day")
    url = urlsplit(live_url)
    body = json.dumps({"model": "m", "max_tokens": 64, "messages": ASK, "stream": True}).encode()
    request = (
        f"POST /v1/messages HTTP/1.1\r\nHost: {url.netloc}\r\nx-api-key: {raw}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b"text_delta" not in received:
            received += sock.recv(4096)

    assert fake_provider.wait_for(
        lambda history: any(r.disconnected for r in history if r.model == "m"), timeout=10
    )
    pause = threading.Event()
    for _ in range(100):  # the cancelled record waits in the engine's buffer for the next flush
        records_flush()
        if CallRecord.objects.filter(api_key=key, status="cancelled").exists():
            break
        pause.wait(0.1)
    (record,) = records(api_key=key)
    assert (record.status, record.stream, record.endpoint) == ("cancelled", True, "messages")
    # The first request reserved the rest of the budget; released, the next one is admitted.
    client = anthropic.Anthropic(base_url=live_url, api_key=raw, max_retries=0, timeout=20)
    assert client.messages.create(model="m", max_tokens=16, messages=ASK).content
