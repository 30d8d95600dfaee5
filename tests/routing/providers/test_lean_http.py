"""The lean HTTP path for OpenAI-style chat completions (routing/providers/openai_style/lean.py)
against the SDK's own path: the same request on the wire, the same answers, the same errors.

Each parity test sends one request through each path (`PROVIDER_LEAN_HTTP` on, then off) to
the fake provider and compares what it received and what came back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from routing.errors import ProviderError, RequestInvalidError, TransientError
from routing.messages import ChatOptions
from routing.providers.base import StreamEnd
from routing.providers.openai_style.lean import lean_body_encode
from routing.providers.registry import client_for
from routing.providers.transport import transport_complete, transport_stream
from routing.sampling import SamplingOptions
from tests.fake_provider import Received, Reply
from tests.routing.providers.conftest import (
    both_paths,
    closed_port,
    complete,
    complete_error,
    error_view,
    lean_set,
    request,
    result_view,
    run,
    stream,
    stream_error,
    telemetry_sent,
    wire_of,
)

OPENAI_KINDS = ["openai", "azure_openai", "openai_compatible"]
# What a provider reads of a request's headers (the SDK's x-stainless-* telemetry is not sent).
HEADERS_THAT_MATTER = (
    "authorization",
    "api-key",
    "content-type",
    "accept",
    "user-agent",
    "x-custom",
    "idempotency-key",
    "openai-organization",
    "openai-project",
)

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CASES: dict[str, dict[str, Any]] = {
    "bare": {},
    "sampling": {
        "temperature": 0.3,
        "max_tokens": 50,
        "sampling": SamplingOptions(
            top_p=0.9,
            stop=("END", "STOP"),
            seed=7,
            presence_penalty=0.5,
            frequency_penalty=-0.25,
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": {"type": "object", "properties": {"city": {"type": "string"}}},
                    "strict": True,
                },
            },
            user="user-42",
        ),
    },
    "chat_options": {
        "max_tokens": 20,
        "chat": ChatOptions(
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
            n=2,
            logprobs=True,
            top_logprobs=3,
            reasoning_effort="low",
        ),
    },
    "image_and_unicode": {
        "messages": [
            {"role": "system", "content": "Réponds brièvement, s'il te plaît 🙂"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Was ist auf dem Bild? 東京"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
                    },
                ],
            },
        ],
    },
}


def _wire(received: Received) -> dict[str, Any]:
    return wire_of(received, headers=HEADERS_THAT_MATTER)


def _spec(fake_provider, kind: str):
    return fake_provider.spec(kind, options={"default_headers": {"X-Custom": "yes"}})


# -- The request on the wire -------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", OPENAI_KINDS)
def test_a_plain_request_carries_every_parameter_the_sdk_path_sends(settings, fake_provider, kind, case):
    spec = _spec(fake_provider, kind)
    req = request("m1", **CASES[case])

    lean, sdk, [lean_received], [sdk_received] = both_paths(
        settings, fake_provider, lambda: complete(spec, req)
    )

    assert _wire(lean_received) == _wire(sdk_received)
    assert not telemetry_sent(lean_received) and telemetry_sent(sdk_received)  # each path really ran
    assert result_view(lean) == result_view(sdk)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", OPENAI_KINDS)
def test_a_streamed_request_carries_every_parameter_the_sdk_path_sends(settings, fake_provider, kind, case):
    spec = _spec(fake_provider, kind)
    req = request("m1", **CASES[case])

    lean, sdk, [lean_received], [sdk_received] = both_paths(
        settings, fake_provider, lambda: stream(spec, req)
    )

    assert _wire(lean_received) == _wire(sdk_received)
    assert lean_received.body["stream"] is True
    assert not telemetry_sent(lean_received) and telemetry_sent(sdk_received)
    assert result_view(lean) == result_view(sdk)


def test_the_azure_request_goes_to_the_deployment_with_the_api_version_and_api_key(settings, fake_provider):
    lean_set(settings, True)

    complete(fake_provider.spec("azure_openai"), request("my deployment"))

    received = fake_provider.history[-1]
    assert received.path == "/openai/deployments/my%20deployment/chat/completions"
    assert received.query == {"api-version": "2024-10-21"}
    assert received.headers["api-key"] and "authorization" not in received.headers


def test_a_keyless_openai_compatible_server_gets_the_placeholder_key_on_both_paths(settings, fake_provider):
    spec = fake_provider.spec("openai_compatible", api_key_env="")

    _, _, [lean_received], [sdk_received] = both_paths(
        settings, fake_provider, lambda: complete(spec, request("m1"))
    )

    assert lean_received.headers["authorization"] == sdk_received.headers["authorization"]
    assert lean_received.headers["authorization"] == "Bearer no-key-needed"


@pytest.mark.parametrize("streamed", [False, True])
def test_tool_calls_come_back_the_same_on_both_paths(settings, fake_provider, streamed):
    spec = fake_provider.spec("openai")
    req = request("m1", chat=ChatOptions(tools=[WEATHER_TOOL]))

    def send() -> Any:
        fake_provider.script("m1", Reply.tool_call("get_weather", {"city": "Paris"}))
        return stream(spec, req)[-1] if streamed else complete(spec, req)

    lean, sdk, _, _ = both_paths(settings, fake_provider, send)

    assert result_view(lean) == result_view(sdk)
    assert [call["function"]["name"] for call in lean.tool_calls] == ["get_weather"]


# -- Errors ------------------------------------------------------------------------------------

STATUS_REPLIES = {
    "429 with retry-after": lambda: Reply.rate_limit(retry_after=2),
    "429 with retry-after-ms": lambda: Reply.rate_limit(retry_after_ms=1500),
    "500": lambda: Reply.server_error(500),
    "503": lambda: Reply.server_error(503),
    "400": lambda: Reply.bad_request(),
    "401": lambda: Reply.unauthorized(),
    "403": lambda: Reply.forbidden(),
    "404": lambda: Reply.model_not_found(),
    "context too long": lambda: Reply.context_length(),
    "content filter": lambda: Reply.content_filter(),
    "an echoed key": lambda: Reply.echo_auth(),
    "reset": lambda: Reply.reset(),
}


@pytest.mark.parametrize("reply", [*STATUS_REPLIES, "body cut short"])
@pytest.mark.parametrize("kind", OPENAI_KINDS)
def test_a_failed_call_maps_to_the_same_error_on_both_paths(settings, fake_provider, kind, reply):
    spec = fake_provider.spec(kind)
    replies = {**STATUS_REPLIES, "body cut short": lambda: Reply.stream_cut()}

    def send() -> ProviderError:
        fake_provider.script("m1", replies[reply]())
        return complete_error(spec, request("m1"))

    lean, sdk, _, _ = both_paths(settings, fake_provider, send)

    assert error_view(lean) == error_view(sdk)


@pytest.mark.parametrize("reply", [*STATUS_REPLIES, "cut mid-way", "error event"])
@pytest.mark.parametrize("kind", ["openai", "azure_openai"])
def test_a_failed_stream_maps_to_the_same_error_on_both_paths(settings, fake_provider, kind, reply):
    spec = fake_provider.spec(kind)
    replies = {
        **STATUS_REPLIES,
        "cut mid-way": lambda: Reply.stream_cut(after_tokens=2),
        "error event": lambda: Reply.stream_error(after_tokens=2),
    }

    def send() -> tuple[list, ProviderError]:
        fake_provider.script("m1", replies[reply]())
        return stream_error(spec, request("m1"))

    (lean_items, lean), (sdk_items, sdk), _, _ = both_paths(settings, fake_provider, send)

    assert error_view(lean) == error_view(sdk)
    assert lean_items == sdk_items


def test_a_retry_after_is_honoured_on_the_lean_path(settings, fake_provider):
    lean_set(settings, True)
    fake_provider.script("m1", Reply.rate_limit(retry_after=2))

    error = complete_error(fake_provider.spec("openai"), request("m1"))

    assert type(error) is TransientError
    assert (error.http_status, error.retry_after_s) == (429, 2.0)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_hang_is_the_same_timeout_on_both_paths(settings, fake_provider, streamed):
    spec = fake_provider.spec("openai")

    def send() -> ProviderError:
        fake_provider.script("m1", Reply.hang(30))
        if streamed:
            return stream_error(spec, request("m1", timeout_s=0.3))[1]
        return complete_error(spec, request("m1", timeout_s=0.3))

    lean, sdk, _, _ = both_paths(settings, fake_provider, send)

    assert error_view(lean) == error_view(sdk)
    assert lean.timeout
    assert fake_provider.wait_for(lambda h: h[-2].disconnected)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_refused_connection_is_the_same_transient_error_on_both_paths(settings, fake_provider, streamed):
    spec = fake_provider.spec("openai", base_url=f"http://127.0.0.1:{closed_port()}/v1")
    errors = []
    for on in (True, False):
        lean_set(settings, on)
        if streamed:
            errors.append(stream_error(spec, request("m1"))[1])
        else:
            errors.append(complete_error(spec, request("m1")))

    assert error_view(errors[0]) == error_view(errors[1])
    assert type(errors[0]) is TransientError
    assert "Connection to the provider failed" in errors[0].message


@pytest.mark.parametrize(
    "field",
    [
        {"temperature": float("nan")},
        {"messages": [{"role": "user", "content": "half a pair \ud83d"}]},
    ],
    ids=["nan", "lone surrogate"],
)
def test_a_request_the_wire_cannot_carry_is_refused_locally_on_both_paths(settings, fake_provider, field):
    spec = fake_provider.spec("openai")
    errors = []
    for on in (True, False):
        lean_set(settings, on)
        errors.append(complete_error(spec, request("m1", **field)))

    assert error_view(errors[0]) == error_view(errors[1])
    assert type(errors[0]) is RequestInvalidError and errors[0].local
    assert fake_provider.history == []


# -- When the lean path is used ----------------------------------------------------------------


def _lean_of(spec) -> Any:
    async def go() -> Any:
        client: Any = client_for(spec)
        return client.lean

    return run(go())


def test_the_lean_path_is_the_default_for_every_openai_style_kind(fake_provider):
    assert all(_lean_of(fake_provider.spec(kind)) is not None for kind in OPENAI_KINDS)


def test_the_setting_turns_the_lean_path_off(settings, fake_provider):
    lean_set(settings, False)

    assert _lean_of(fake_provider.spec("openai")) is None


def test_the_httpx_layer_keeps_the_sdk_path(fake_provider, httpx_layer):
    assert _lean_of(fake_provider.spec("openai")) is None


def test_a_provider_behind_a_proxy_from_the_environment_keeps_the_sdk_path(fake_provider, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    assert _lean_of(fake_provider.spec("openai")) is None


def test_a_host_the_environment_exempts_from_its_proxy_takes_the_lean_path(fake_provider, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

    assert _lean_of(fake_provider.spec("openai")) is not None


def test_an_sdk_whose_request_cannot_be_read_falls_back_to_its_own_path(fake_provider, caplog):
    spec = fake_provider.spec("openai")

    async def go() -> tuple[Any, Any, bool]:
        client: Any = client_for(spec)
        client.sdk_client._build_request = _unreadable_probe(client.sdk_client._build_request)
        completion = await transport_complete(spec, request("m1"), model_name="m1")
        items = [item async for item in transport_stream(spec, request("m1"), model_name="m1")]
        return completion, items, client.lean.broken

    completion, items, broken = run(go())

    assert completion.text and isinstance(items[-1], StreamEnd)
    assert broken
    assert all(telemetry_sent(received) for received in fake_provider.history)
    assert "keeps the SDK's own path" in caplog.text


def _unreadable_probe(build: Callable[..., Any]) -> Callable[..., Any]:
    """The SDK's request builder failing the lean path's probe (a request for the model alone,
    made once per model) as a newer SDK of another shape would, and building its own as ever."""

    def probe_refused(options: Any, **kwargs: Any) -> Any:
        if "messages" not in (options.json_data or {}):
            raise AttributeError("no such thing")
        return build(options, **kwargs)

    return probe_refused


def test_plain_calls_on_the_lean_path_reuse_one_connection(fake_provider):
    spec = fake_provider.spec("openai")

    async def three() -> None:
        for _ in range(3):
            await transport_complete(spec, request("m1"), model_name="m1")

    run(three())

    assert len(fake_provider.history) == 3
    assert len({received.connection for received in fake_provider.history}) == 1


# -- The body's JSON -----------------------------------------------------------------------------


def _sdk_encoding(params: dict[str, Any]) -> bytes:
    return json.dumps(params, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@pytest.mark.parametrize(
    "params",
    [
        {"model": "m", "messages": [{"role": "user", "content": "Grüße 東京 🎉 \u2028 \x01"}]},
        {"model": "m", "temperature": 0.1, "top_p": 1e-05, "seed": 2**63 - 1, "stop": ["a", "b"]},
        {"model": "m", "messages": [{"role": "assistant", "content": None, "tool_calls": []}]},
        {
            "model": "m",
            "response_format": {"type": "json_schema", "json_schema": {"schema": {"minimum": -0.0}}},
        },
    ],
    ids=["text", "numbers", "a null", "a negative zero"],
)
def test_the_body_is_the_json_the_sdk_encodes(params):
    assert json.loads(lean_body_encode(params)) == json.loads(_sdk_encoding(params))


@pytest.mark.parametrize(
    "params",
    [{"temperature": float("nan")}, {"temperature": float("inf")}],
    ids=["nan", "infinity"],
)
def test_a_number_json_cannot_carry_is_refused_as_the_sdk_refuses_it(params):
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        lean_body_encode(params)


@pytest.mark.parametrize(
    "params",
    [{"seed": 2**70}, {"user": "half \ud800"}, {1: "a key that is not a string"}],
    ids=["an integer beyond 64 bits", "a lone surrogate", "a key that is not a string"],
)
def test_what_orjson_cannot_encode_is_encoded_as_the_sdk_encodes_it(params):
    try:
        expected: bytes | type[Exception] = _sdk_encoding(params)
    except Exception as exc:
        expected = type(exc)

    if isinstance(expected, bytes):
        assert lean_body_encode(params) == expected
    else:
        with pytest.raises(expected):
            lean_body_encode(params)
