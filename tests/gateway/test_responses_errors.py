"""POST /v1/responses' refusals and failures through the official `openai` client: bad input a
400 naming the field (built-in tools and unknown item types among them), the key's limits,
budget and allow-list, a chain falling over, a stream failing before and after its first
output, and on a fresh install's defaults with no provider key (simulated models)."""

import json
import socket
import threading
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import openai
import pytest
from django.conf import settings

from gateway.services import api_key_create
from metrics.models import CallRecord
from routing.config_io import config_import
from routing.orchestrator import records_flush
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)

PRICE = {"input_cost_per_1k": Decimal("1"), "output_cost_per_1k": Decimal("0")}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def alpha(fake_provider):
    return fake_provider.model("alpha", capabilities=["tool_use", "vision"], **PRICE)


def client_for(live_url: str, raw: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key=raw, max_retries=0, timeout=20)


@pytest.fixture
def client(live_url) -> openai.OpenAI:
    return client_for(live_url, api_key_create(name="agent")[1])


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": 5}, "input"),
        ({"input": []}, "input"),
        ({"input": ["hi"]}, "input[0]"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"role": "robot", "content": "hi"}]}, "input[0].role"),
        ({"input": [{"role": "user", "content": 7}]}, "input[0].content"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "ftp://x"}]}]},
            "input[0].content[0].image_url",
        ),
        (
            {"input": [{"role": "user", "content": "hi"}, {"type": "function_call_output", "call_id": "c1"}]},
            "input[1].call_id",
        ),
        (
            {"input": [{"type": "function_call", "call_id": 3, "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
        ),
        ({"instructions": ["be brief"]}, "instructions"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 3}, "temperature"),
        ({"top_p": 2}, "top_p"),
        ({"max_output_tokens": "many"}, "max_output_tokens"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"stream": "yes"}, "stream"),
        ({"store": "yes"}, "store"),
        ({"metadata": {"n": 1}}, "metadata.n"),
        ({"metadata": ["a"]}, "metadata"),
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "web_search_preview"}]}, "tools[0].type"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[0].type"),
        (
            {
                "tools": [
                    {
                        "type": "computer_use_preview",
                        "display_width": 1,
                        "display_height": 1,
                        "environment": "linux",
                    }
                ]
            },
            "tools[0].type",
        ),
        ({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, "tools[0].type"),
        ({"tools": [{"type": "image_generation"}]}, "tools[0].type"),
        ({"tools": [{"type": "mcp", "server_label": "x", "server_url": "https://x"}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "name": "bad name!"}]}, "tools[0].name"),
        ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "function", "name": "other"}}, "tool_choice.name"),
        ({"tools": [WEATHER_TOOL], "tool_choice": {"type": "web_search_preview"}}, "tool_choice.type"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
        ({"text": "json"}, "text"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"user": 5}, "user"),
        ({"previous_response_id": 5}, "previous_response_id"),
        ({"background": True}, "background"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"model": 5}, "model"),
    ],
)
def test_bad_input_is_a_400_in_openais_shape_naming_the_field(client, alpha, fake_provider, fields, param):
    request = {"model": "alpha", "input": "hi", **fields}

    with pytest.raises(openai.BadRequestError) as error:
        client.responses.create(**request)

    assert (error.value.body["param"], error.value.body["type"]) == (param, "invalid_request_error")
    assert not fake_provider.requests_for("alpha")
    assert not CallRecord.objects.exists()


@pytest.mark.parametrize(
    "tool", ["web_search", "file_search", "computer_use_preview", "code_interpreter", "mcp"]
)
def test_a_built_in_tool_is_refused_naming_its_type(client, alpha, tool):
    with pytest.raises(openai.BadRequestError) as error:
        client.responses.create(model="alpha", input="hi", tools=[{"type": tool}])
    assert repr(tool) in error.value.message and "function tools only" in error.value.message


def test_an_unknown_item_type_is_named(client, alpha):
    with pytest.raises(openai.BadRequestError) as error:
        client.responses.create(model="alpha", input=[{"type": "hologram", "data": "x"}])
    assert "'hologram'" in error.value.message


def test_a_body_that_is_not_json_is_a_400(live_url):
    raw = api_key_create(name="raw")[1]
    response = httpx.post(
        f"{live_url}/v1/responses", headers={"authorization": f"Bearer {raw}"}, content=b"{nope"
    )
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_json")


def test_a_chain_falls_over_inside_the_endpoint(client, fake_provider):
    first = fake_provider.model("first")
    second = fake_provider.model("second")
    FallbackChainFactory(name="steady", models=[first, second])
    fake_provider.script("first", Reply.unauthorized())

    raw = client.responses.with_raw_response.create(model="chain:steady", input="hello")

    assert raw.parse().model == "second"
    assert raw.headers["x-orchestrator-attempts"] == "2"
    trace = raw.headers["x-orchestrator-trace-id"]
    records = CallRecord.objects.filter(trace_id=trace).order_by("id")
    assert [(r.model_name, r.status, r.endpoint) for r in records] == [
        ("first", "error", "responses"),
        ("second", "ok", "responses"),
    ]


def test_a_chain_falls_over_inside_a_stream(client, fake_provider):
    first = fake_provider.model("first")
    second = fake_provider.model("second")
    FallbackChainFactory(name="steady", models=[first, second])
    fake_provider.script("first", Reply.unauthorized())

    with client.responses.stream(model="chain:steady", input="hello") as stream:
        final = stream.get_final_response()

    assert (final.model, final.status) == ("second", "completed")


def test_every_model_failing_is_a_5xx_in_openais_shape(client, alpha, fake_provider):
    fake_provider.script("alpha", *[Reply.server_error(503)] * 5)
    with pytest.raises(openai.APIStatusError) as error:
        client.responses.create(model="alpha", input="hello")
    assert error.value.status_code in (502, 503)
    assert error.value.body["code"] == "all_attempts_failed"


def test_a_stream_that_fails_before_its_first_output_gets_a_status_code(client, alpha, fake_provider):
    fake_provider.script("alpha", *[Reply.server_error(503)] * 5)
    with (
        pytest.raises(openai.APIStatusError) as error,
        client.responses.stream(model="alpha", input="hello") as s,
    ):
        list(s)
    assert error.value.status_code in (502, 503)


def test_a_stream_that_fails_after_its_first_output_ends_with_response_failed(live_url, alpha, fake_provider):
    fake_provider.script("alpha", Reply.stream_error(after_tokens=2, text="one two three four"))
    raw = api_key_create(name="raw")[1]

    response = httpx.post(
        f"{live_url}/v1/responses",
        headers={"authorization": f"Bearer {raw}"},
        json={"model": "alpha", "input": "count", "stream": True},
    )

    kinds = [
        line.removeprefix("event: ") for line in response.text.splitlines() if line.startswith("event: ")
    ]
    assert kinds[0] == "response.created" and kinds[-1] == "response.failed"
    assert "response.output_text.delta" in kinds and "response.completed" not in kinds


def test_the_rpm_limit_refuses_with_a_429(live_url, alpha):
    client = client_for(live_url, api_key_create(name="slow", rpm=1)[1])
    client.responses.create(model="alpha", input="hi")
    with pytest.raises(openai.RateLimitError) as error:
        client.responses.create(model="alpha", input="hi")
    assert error.value.body["code"] == "rate_limit_exceeded"


def test_an_exhausted_budget_refuses_with_a_429_and_the_cost_counts(live_url, alpha):
    key, raw = api_key_create(name="tight", budget_usd=Decimal("0.005"), budget_period="day")
    client = client_for(live_url, raw)
    client.responses.create(model="alpha", input="one two three four five six")  # 6 input tokens: $0.006
    with pytest.raises(openai.RateLimitError) as error:
        client.responses.create(model="alpha", input="hi")
    assert error.value.body["code"] == "budget_exceeded"
    assert sum(r.cost_usd for r in CallRecord.objects.filter(api_key=key)) == Decimal("0.006")


def test_a_streamed_answer_counts_against_the_budget(live_url, alpha):
    key, raw = api_key_create(name="tight", budget_usd=Decimal("0.005"), budget_period="day")
    client = client_for(live_url, raw)
    with client.responses.stream(model="alpha", input="one two three four five six") as stream:
        stream.get_final_response()
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model="alpha", input="hi")


def test_a_target_outside_the_allow_list_is_403(live_url, alpha):
    client = client_for(live_url, api_key_create(name="other-only", allowed=["gpt-4o"])[1])
    with pytest.raises(openai.PermissionDeniedError):
        client.responses.create(model="alpha", input="hi")


def test_an_unknown_model_is_a_404_naming_it(client):
    with pytest.raises(openai.NotFoundError) as error:
        client.responses.create(model="no-such-model", input="hi")
    assert error.value.body["param"] == "model"


# -- A fresh install: the shipped defaults, no provider key, the simulated models answer ------

PROVIDER_KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "GEMINI_API_KEY")
TARGETS = ["sim-smart", "route:summarization", "chain:fast"]


@pytest.fixture
def defaults(monkeypatch):
    for variable in PROVIDER_KEY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    config_import(text=(Path(settings.BASE_DIR) / "config" / "defaults.yaml").read_text())


@pytest.mark.parametrize("target", TARGETS)
def test_the_default_simulated_models_answer_create_and_stream(client, defaults, target):
    answered = client.responses.create(model=target, input="Summarise: the cat sat on the mat.")
    with client.responses.stream(model=target, input="Summarise: the dog ran.") as stream:
        final = stream.get_final_response()

    assert answered.status == final.status == "completed"
    assert answered.output_text and final.output_text
    assert answered.model.startswith("sim-") and final.model.startswith("sim-")


@pytest.mark.parametrize("target", ["sim-smart", "chain:fast"])
def test_a_function_tool_loop_runs_on_the_default_simulated_models(client, defaults, target):
    tool = {**WEATHER_TOOL, "parameters": {**WEATHER_TOOL["parameters"], "required": ["city"]}}
    first = client.responses.create(
        model=target,
        input="What is the weather in Paris? Use get_weather.",
        tools=[tool],
        tool_choice="required",
    )
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather"

    second = client.responses.create(
        model=target,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "sunny"}'}],
        tools=[tool],
    )

    assert second.status == "completed" and second.output_text


def test_a_stream_the_client_cuts_is_recorded_as_cancelled_and_settles_the_key(
    live_url, alpha, fake_provider
):
    key, raw = api_key_create(name="cut", budget_usd=Decimal("1"), budget_period="day")
    fake_provider.script("alpha", Reply.slow(token_interval_s=0.5, text=" ".join(["word"] * 40)))
    url = urlsplit(live_url)
    body = json.dumps({"model": "alpha", "input": "talk", "stream": True}).encode()
    request = (
        f"POST /v1/responses HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {raw}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b"response.output_text.delta" not in received:
            received += sock.recv(4096)

    assert fake_provider.wait_for(
        lambda history: any(r.disconnected for r in history if r.model == "alpha"), timeout=10
    )
    pause = threading.Event()
    for _ in range(100):  # the cancelled record waits in the engine's buffer for a flush
        records_flush()
        if CallRecord.objects.filter(api_key=key, status="cancelled").exists():
            break
        pause.wait(0.1)
    (record,) = CallRecord.objects.filter(api_key=key)
    assert (record.status, record.stream, record.endpoint) == ("cancelled", True, "responses")
    # Its reservation was given back: the key's next request is admitted.
    assert client_for(live_url, raw).responses.create(model="alpha", input="again").status == "completed"
