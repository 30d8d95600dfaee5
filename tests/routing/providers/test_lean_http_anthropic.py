"""Anthropic's messages, plain and streamed, on the lean HTTP path
(routing/providers/openai_style/lean.py) against the anthropic SDK's own path (`post` for plain
calls, `messages.create(stream=True)` for streams): the same request on the wire, the same
answers (the errors: test_lean_http_anthropic_errors.py).

Each parity test sends one call through each path (`PROVIDER_LEAN_HTTP` on, then off) to the
fake provider and compares what it received and what came back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from anthropic._constants import ANTHROPIC_API_VERSION

from routing.errors import ProviderError
from routing.messages import ChatOptions
from routing.providers.base import StreamEnd
from routing.providers.transport import transport_complete, transport_stream
from routing.sampling import SamplingOptions
from tests.fake_provider import FAKE_KEY, Reply
from tests.routing.providers.conftest import (
    both_paths,
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
    "bare": {"messages": [{"role": "user", "content": "Hi"}]},
    "system": {
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "system", "content": "In French."},
            {"role": "user", "content": "What is the capital of France?"},
        ]
    },
    "temperature, max tokens and stop sequences": {
        "temperature": 0.3,
        "max_tokens": 50,
        "sampling": SamplingOptions(top_p=0.9, stop=("END", "STOP"), seed=7, user="user-42"),
    },
    "a json schema": {
        "sampling": SamplingOptions(
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "schema": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        )
    },
    "tools": {
        "max_tokens": 20,
        "chat": ChatOptions(
            tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
        ),
    },
    "a tool turn": {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_P4r1s",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_P4r1s", "content": "18 °C"},
        ],
    },
    "reasoning": {"max_tokens": 100, "chat": ChatOptions(reasoning_effort="low")},
    "images and unicode": {
        "messages": [
            {"role": "system", "content": "Réponds brièvement, s'il te plaît 🙂"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Was ist auf dem Bild? 東京"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            },
        ],
    },
}


def _spec(fake_provider, **options: Any):
    return fake_provider.spec("anthropic", options={"default_headers": {"X-Custom": "yes"}, **options})


# -- The request on the wire -------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_a_plain_request_carries_every_parameter_the_sdk_path_sends(settings, fake_provider, case):
    spec = _spec(fake_provider)
    req = request("claude-1", **CASES[case])

    lean, sdk, [lean_received], [sdk_received] = both_paths(
        settings, fake_provider, lambda: complete(spec, req)
    )

    assert wire_of(lean_received) == wire_of(sdk_received)
    assert lean_received.path == "/v1/messages" and lean_received.headers["x-custom"] == "yes"
    assert not telemetry_sent(lean_received) and telemetry_sent(sdk_received)  # each path really ran
    assert result_view(lean) == result_view(sdk)


@pytest.mark.parametrize("case", list(CASES))
def test_a_streamed_request_carries_every_parameter_the_sdk_path_sends(settings, fake_provider, case):
    spec = _spec(fake_provider)
    req = request("claude-1", **CASES[case])

    lean, sdk, [lean_received], [sdk_received] = both_paths(
        settings, fake_provider, lambda: stream(spec, req)
    )

    assert wire_of(lean_received) == wire_of(sdk_received)
    assert lean_received.body["stream"] is True
    assert not telemetry_sent(lean_received) and telemetry_sent(sdk_received)
    assert result_view(lean) == result_view(sdk)


def test_the_key_and_api_version_headers_are_the_sdks(settings, fake_provider):
    lean_set(settings, True)

    complete(fake_provider.spec("anthropic"), request("claude-1"))

    headers = fake_provider.history[-1].headers
    # anthropic 2.x sends the key as a bearer token (1.x sent x-api-key).
    assert headers["authorization"] == f"Bearer {FAKE_KEY}" and "x-api-key" not in headers
    assert headers["anthropic-version"] == ANTHROPIC_API_VERSION
    assert not telemetry_sent(fake_provider.history[-1])


@pytest.mark.parametrize("streamed", [False, True])
def test_tool_calls_and_cached_usage_come_back_the_same_on_both_paths(settings, fake_provider, streamed):
    spec = _spec(fake_provider)
    req = request("claude-1", chat=ChatOptions(tools=[WEATHER_TOOL]))

    def send() -> Any:
        fake_provider.script(
            "claude-1",
            Reply.tool_calls_of(
                {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}},
                {"id": "toolu_2", "name": "get_weather", "arguments": {}},
                text="Let me look.",
                input_tokens=20,
                cached_tokens=8,
            ),
        )
        return stream(spec, req) if streamed else complete(spec, req)

    lean, sdk, _, _ = both_paths(settings, fake_provider, send)

    assert result_view(lean) == result_view(sdk)
    end = lean[-1] if streamed else lean
    assert [call["function"]["arguments"] for call in end.tool_calls] == ['{"city": "Paris"}', "{}"]
    assert (end.usage.input_tokens, end.usage.cached_tokens) == (20, 8)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_refusal_is_the_same_error_on_both_paths(settings, fake_provider, streamed):
    spec = _spec(fake_provider)

    def send() -> Any:
        fake_provider.script("claude-1", Reply.ok("No.", finish_reason="content_filter"))
        if streamed:
            return stream_error(spec, request("claude-1"))
        return complete_error(spec, request("claude-1"))

    lean, sdk, _, _ = both_paths(settings, fake_provider, send)

    if streamed:
        assert lean[0] == sdk[0]
        lean, sdk = lean[1], sdk[1]
    assert error_view(lean) == error_view(sdk)


# -- Streams as they are written -------------------------------------------------------------


def _event(name: str | None, data: Any) -> str:
    head = f"event: {name}\r\n" if name else ""
    return f"{head}data: {data if isinstance(data, str) else json.dumps(data)}\r\n\r\n"


_START = {
    "type": "message_start",
    "message": {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "content": [],
        "usage": {"input_tokens": 3},
    },
}
_DELTA = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Bonjour"}}
_END = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}
RAW_STREAMS: dict[str, Callable[[], tuple[str, ...]]] = {
    "split across reads, CRLF, pings, comments and unnamed events": lambda: (
        _event("message_start", _START)[:30],
        _event("message_start", _START)[30:] + ": a comment\r\n\r\n",
        _event("ping", {"type": "ping"}) + _event(None, _DELTA),
        _event("content_block_delta", _DELTA)[:-1],
        "\n" + _event("message_delta", _END) + "event: ping\r\n\r\n",
        _event("message_stop", {"type": "message_stop"}),
    ),
    "an error event": lambda: (
        _event("message_start", _START),
        _event("content_block_delta", _DELTA),
        _event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    ),
    "an error event that is not JSON": lambda: (_event("message_start", _START), _event("error", "busy")),
    "an error event without data": lambda: (_event("message_start", _START), "event: error\n\n"),
    "an event that is not JSON": lambda: (
        _event("message_start", _START),
        _event("content_block_delta", "{no"),
    ),
    "no message_stop": lambda: (_event("message_start", _START), _event("content_block_delta", _DELTA)),
}


@pytest.mark.parametrize("body", list(RAW_STREAMS))
def test_a_stream_as_written_reads_the_same_on_both_paths(settings, fake_provider, body):
    spec = _spec(fake_provider)

    def send() -> tuple[list, dict[str, Any] | None]:
        fake_provider.script("claude-1", Reply.raw_stream(*RAW_STREAMS[body]()))
        items: list = []

        async def go() -> dict[str, Any] | None:
            try:
                async for item in transport_stream(spec, request("claude-1"), model_name="c"):
                    items.append(item)
            except ProviderError as exc:
                return error_view(exc)
            return None

        error = run(go())
        return result_view(items), error

    lean, sdk, _, _ = both_paths(settings, fake_provider, send)

    assert lean == sdk


def test_a_finished_stream_hands_its_connection_back(settings, fake_provider):
    lean_set(settings, True)
    spec = fake_provider.spec("anthropic")

    async def three() -> list[Any]:
        results: list[Any] = []
        for _ in range(2):
            results.append(
                [item async for item in transport_stream(spec, request("claude-1"), model_name="c")]
            )
        results.append(await transport_complete(spec, request("claude-1"), model_name="c"))
        return results

    results = run(three())

    assert isinstance(results[0][-1], StreamEnd) and results[2].text
    assert len({received.connection for received in fake_provider.history}) == 1
    assert not any(telemetry_sent(received) for received in fake_provider.history)
