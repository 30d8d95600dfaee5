"""POST /v1/messages refusing: bad input (a 400 in Anthropic's shape naming the field, before
anything is counted or recorded), keys (x-api-key or bearer, 401, 403), limits and budgets
(429s the `anthropic` SDK raises as RateLimitError), an unknown model (404), through both
fronts; and on the shipped defaults with no provider key, the simulated models answer."""

from decimal import Decimal
from pathlib import Path

import anthropic
import httpx
import pytest
from django.conf import settings

from gateway.services import api_key_create
from metrics.models import CallRecord
from routing.config_io import config_import

pytestmark = pytest.mark.django_db(transaction=True)

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
PRICE = {"input_cost_per_1k": Decimal("1"), "output_cost_per_1k": Decimal("1")}
TOOL = {"name": "get_weather", "input_schema": {"type": "object"}}
PROVIDER_KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "GEMINI_API_KEY")


@pytest.fixture
def model(fake_provider) -> str:
    fake_provider.model("m", kind="openai", capabilities=["tool_use", "vision"], **PRICE)
    return "m"


def sdk(live_url: str, raw: str, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=live_url, api_key=raw, max_retries=0, timeout=20, **kwargs)


def post(live_url: str, body: dict, *, path: str = "/v1/messages", **headers: str) -> httpx.Response:
    return httpx.post(f"{live_url}{path}", headers=headers, json=body, timeout=20)


def assert_anthropic_error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind
    return body["error"]["message"]


def message(**fields) -> dict:
    return {"model": "m", "max_tokens": 16, "messages": ASK, **fields}


def turn(*blocks: dict, role: str = "user") -> list[dict]:
    return [{"role": role, "content": list(blocks)}]


TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"max_tokens": 16, "messages": ASK}, "model"),
        ({"model": 7, "max_tokens": 16, "messages": ASK}, "model"),
        ({"model": "m", "messages": ASK}, "max_tokens"),
        (message(max_tokens="16"), "max_tokens"),
        (message(max_tokens=0), "max_tokens"),
        (message(messages="hi"), "messages"),
        (message(messages=[]), "messages"),
        (message(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
        (message(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (message(messages=turn({"type": "document", "source": {}})), "messages[0].content[0].type"),
        (message(messages=turn({"type": "text", "text": 3})), "messages[0].content[0].text"),
        (
            message(
                messages=turn(
                    {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AA"}}
                )
            ),
            "messages[0].content[0].source.media_type",
        ),
        (
            message(messages=turn({"type": "image", "source": {"type": "url", "url": "file:///etc/passwd"}})),
            "messages[0].content[0].source.url",
        ),
        (
            message(messages=turn({"type": "tool_result", "tool_use_id": "toolu_x", "content": "sunny"})),
            "messages[0].content[0].tool_use_id",
        ),
        (
            message(messages=[*ASK, *turn({**TOOL_USE, "input": "city"}, role="assistant")]),
            "messages[1].content[0].input",
        ),
        (message(system=5), "system"),
        (message(system=[{"type": "image"}]), "system[0].type"),
        (message(tools={"name": "x"}), "tools"),
        (message(tools=[{"name": "get weather!", "input_schema": {"type": "object"}}]), "tools[0].name"),
        (message(tools=[{"name": "x"}]), "tools[0].input_schema"),
        (message(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools[0].type"),
        (message(tools=[TOOL], tool_choice="auto"), "tool_choice"),
        (message(tools=[TOOL], tool_choice={"type": "required"}), "tool_choice.type"),
        (message(tools=[TOOL], tool_choice={"type": "tool", "name": "other"}), "tool_choice.name"),
        (message(tool_choice={"type": "any"}), "tool_choice.type"),
        (
            message(tools=[TOOL], tool_choice={"type": "auto", "disable_parallel_tool_use": "yes"}),
            "tool_choice.disable_parallel_tool_use",
        ),
        (message(temperature=1.5), "temperature"),
        (message(top_p="high"), "top_p"),
        (message(top_k=5), "top_k"),
        (message(stop_sequences="END"), "stop_sequences"),
        (message(stop_sequences=["END", 3]), "stop_sequences[1]"),
        (message(metadata={"user_id": 5}), "metadata.user_id"),
        (message(stream="yes"), "stream"),
        (message(thinking={"type": "enabled", "budget_tokens": 2048}), "thinking"),
        (message(output_config={"format": {"type": "json_object"}}), "output_config.format"),
        (message(output_config={"effort": "max"}), "output_config.effort"),
    ],
)
def test_bad_input_is_a_400_in_anthropics_shape_naming_the_field(live_url, model, body, named):
    raw = api_key_create(name="app")[1]

    error = assert_anthropic_error(post(live_url, body, **{"x-api-key": raw}), 400, "invalid_request_error")

    assert named in error
    assert not CallRecord.objects.exists()


def test_a_body_over_the_limit_is_request_too_large(live_url, model, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "GATEWAY_MAX_BODY_BYTES": 200}
    raw = api_key_create(name="app")[1]

    response = post(live_url, message(system="x" * 500), **{"x-api-key": raw})

    assert "limit is 200 bytes" in assert_anthropic_error(response, 413, "request_too_large")


def test_the_sdk_raises_bad_request_for_a_missing_max_tokens(live_url, model):
    client = sdk(live_url, api_key_create(name="app")[1])

    with pytest.raises(anthropic.BadRequestError) as error:
        client.messages.create(model="m", messages=ASK, max_tokens=None)  # type: ignore[arg-type]

    assert error.value.body["error"]["type"] == "invalid_request_error"
    assert "max_tokens is required" in error.value.message


def test_a_body_that_is_not_json_is_a_400(live_url, model):
    raw = api_key_create(name="app")[1]
    response = httpx.post(f"{live_url}/v1/messages", headers={"x-api-key": raw}, content=b"{", timeout=20)

    assert "not valid JSON" in assert_anthropic_error(response, 400, "invalid_request_error")


@pytest.mark.parametrize("header", ["x-api-key", "bearer"])
def test_the_key_is_taken_from_x_api_key_or_a_bearer_header(live_url, model, monkeypatch, header):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    key, raw = api_key_create(name="app")
    client = (
        sdk(live_url, raw)
        if header == "x-api-key"
        else anthropic.Anthropic(base_url=live_url, auth_token=raw, max_retries=0, timeout=20)
    )

    client.messages.create(model="m", max_tokens=16, messages=ASK)

    (record,) = CallRecord.objects.all()
    assert (record.api_key_id, record.endpoint) == (key.pk, "messages")


def test_django_serves_the_same_endpoint_with_x_api_key(client, model):
    raw = api_key_create(name="app")[1]

    response = client.post(
        "/v1/messages",
        data=message(),
        content_type="application/json",
        HTTP_X_API_KEY=raw,
        HTTP_ANTHROPIC_VERSION="2023-06-01",
    )

    assert response.status_code == 200 and response.json()["type"] == "message"
    assert CallRecord.objects.get().endpoint == "messages"


def test_a_missing_or_unknown_key_is_an_authentication_error(live_url, model):
    missing = assert_anthropic_error(post(live_url, message()), 401, "authentication_error")
    assert "x-api-key" in missing
    with pytest.raises(anthropic.AuthenticationError):
        sdk(live_url, "ork-unknown").messages.create(model="m", max_tokens=16, messages=ASK)


def test_a_model_outside_the_allow_list_is_a_permission_error(live_url, model):
    raw = api_key_create(name="narrow", allowed=["other"])[1]

    with pytest.raises(anthropic.PermissionDeniedError) as error:
        sdk(live_url, raw).messages.create(model="m", max_tokens=16, messages=ASK)
    assert error.value.body["error"]["type"] == "permission_error"
    with pytest.raises(anthropic.PermissionDeniedError):
        sdk(live_url, raw).messages.count_tokens(model="m", messages=ASK)


def test_an_unknown_model_is_not_found(live_url, model):
    with pytest.raises(anthropic.NotFoundError) as error:
        sdk(live_url, api_key_create(name="app")[1]).messages.create(
            model="nope", max_tokens=16, messages=ASK
        )
    assert error.value.body["error"]["type"] == "not_found_error"


def test_the_rate_limit_is_a_rate_limit_error(live_url, model):
    client = sdk(live_url, api_key_create(name="slow", rpm=1)[1])
    client.messages.create(model="m", max_tokens=16, messages=ASK)

    with (
        pytest.raises(anthropic.RateLimitError) as error,
        client.messages.stream(model="m", max_tokens=16, messages=ASK) as stream,
    ):
        stream.get_final_message()

    assert error.value.body["error"]["type"] == "rate_limit_error"
    assert error.value.response.headers["retry-after"]


def test_an_exhausted_budget_is_a_rate_limit_error(live_url, model):
    key, raw = api_key_create(name="tight", budget_usd=Decimal("0.005"), budget_period="day")
    client = sdk(live_url, raw)
    client.messages.create(model="m", max_tokens=16, messages=ASK)  # 6 + 7 tokens at $1/1K: $0.013

    with pytest.raises(anthropic.RateLimitError) as error:
        client.messages.create(model="m", max_tokens=16, messages=ASK)

    assert "Budget exhausted" in error.value.message
    assert CallRecord.objects.get().cost_usd == Decimal("0.013")


def test_a_streamed_answer_settles_the_budget_too(live_url, model):
    client = sdk(live_url, api_key_create(name="tight", budget_usd=Decimal("0.005"), budget_period="day")[1])
    with client.messages.stream(model="m", max_tokens=16, messages=ASK) as stream:
        stream.get_final_message()

    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="m", max_tokens=16, messages=ASK)


@pytest.fixture
def defaults(monkeypatch) -> None:
    """The shipped defaults on a fresh install: no provider key, so the simulated models answer."""
    for variable in PROVIDER_KEY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    config_import(text=(Path(settings.BASE_DIR) / "config" / "defaults.yaml").read_text())


@pytest.mark.parametrize("target", ["sim-smart", "route:summarization", "chain:fast"])
def test_the_default_simulated_models_answer_plain_streamed_and_with_tools(live_url, defaults, target):
    client = sdk(live_url, api_key_create(name="app")[1])

    plain = client.messages.create(model=target, max_tokens=64, messages=ASK)
    with client.messages.stream(model=target, max_tokens=64, messages=ASK) as stream:
        streamed = "".join(stream.text_stream)
    tooled = client.messages.create(
        model=target,
        max_tokens=64,
        messages=ASK,
        tools=[
            {
                "name": "get_weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    counted = client.messages.count_tokens(model=target, messages=ASK)

    assert plain.content[0].text and streamed
    assert plain.model.startswith("sim-")
    (call,) = [b for b in tooled.content if b.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input, dict) and tooled.stop_reason == "tool_use"
    assert counted.input_tokens > 0
