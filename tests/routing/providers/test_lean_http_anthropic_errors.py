"""Anthropic's messages on the lean HTTP path against the anthropic SDK's own path: the same
errors for the same faults (statuses, refused and reset connections, bodies cut short, hangs),
and when a client takes the lean path at all. The requests and answers:
test_lean_http_anthropic.py."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from routing.errors import ProviderError, RequestInvalidError, TransientError
from routing.providers.base import StreamEnd
from routing.providers.registry import client_for
from routing.providers.transport import transport_complete, transport_stream
from tests.fake_provider import Reply
from tests.routing.providers.conftest import (
    both_paths,
    closed_port,
    complete_error,
    error_view,
    lean_set,
    request,
    run,
    stream_error,
    telemetry_sent,
)

# -- Errors ------------------------------------------------------------------------------------

STATUS_REPLIES = {
    "400": lambda: Reply.bad_request("max_tokens: too large"),
    "401": lambda: Reply.unauthorized(),
    "403": lambda: Reply.forbidden(),
    "404": lambda: Reply.model_not_found(),
    "408": lambda: Reply(kind="error", status=408, error_type="timeout_error", message="Request timed out."),
    "409": lambda: Reply(kind="error", status=409, error_type="conflict_error", message="Try again."),
    "422": lambda: Reply(kind="error", status=422, error_type="invalid_request_error", message="Bad input."),
    "429 with retry-after": lambda: Reply.rate_limit(retry_after=2),
    "500": lambda: Reply.server_error(500),
    "503": lambda: Reply.server_error(503),
    "529": lambda: Reply.overloaded(),
    "context too long": lambda: Reply.context_length(),
    "content filter": lambda: Reply.content_filter(),
    "an echoed key": lambda: Reply.echo_auth(),
    "reset": lambda: Reply.reset(),
}


@pytest.mark.parametrize("reply", [*STATUS_REPLIES, "body cut short"])
def test_a_failed_call_maps_to_the_same_error_on_both_paths(settings, fake_provider, reply):
    spec = fake_provider.spec("anthropic")
    replies = {**STATUS_REPLIES, "body cut short": lambda: Reply.stream_cut()}

    def send() -> ProviderError:
        fake_provider.script("claude-1", replies[reply]())
        return complete_error(spec, request("claude-1"))

    lean, sdk, _, _ = both_paths(settings, fake_provider, send)

    assert error_view(lean) == error_view(sdk)


@pytest.mark.parametrize("reply", [*STATUS_REPLIES, "cut mid-way", "error event"])
def test_a_failed_stream_maps_to_the_same_error_on_both_paths(settings, fake_provider, reply):
    spec = fake_provider.spec("anthropic")
    replies = {
        **STATUS_REPLIES,
        "cut mid-way": lambda: Reply.stream_cut(after_tokens=2),
        "error event": lambda: Reply.stream_error(after_tokens=2),
    }

    def send() -> tuple[list, ProviderError]:
        fake_provider.script("claude-1", replies[reply]())
        return stream_error(spec, request("claude-1"))

    (lean_items, lean), (sdk_items, sdk), _, _ = both_paths(settings, fake_provider, send)

    assert error_view(lean) == error_view(sdk)
    assert lean_items == sdk_items


def test_a_retry_after_is_honoured_on_the_lean_path(settings, fake_provider):
    lean_set(settings, True)
    fake_provider.script("claude-1", Reply.rate_limit(retry_after=2))

    error = complete_error(fake_provider.spec("anthropic"), request("claude-1"))

    assert type(error) is TransientError
    assert (error.http_status, error.retry_after_s) == (429, 2.0)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_hang_is_the_same_timeout_on_both_paths(settings, fake_provider, streamed):
    spec = fake_provider.spec("anthropic")

    def send() -> ProviderError:
        fake_provider.script("claude-1", Reply.hang(30))
        if streamed:
            return stream_error(spec, request("claude-1", timeout_s=0.3))[1]
        return complete_error(spec, request("claude-1", timeout_s=0.3))

    lean, sdk, _, _ = both_paths(settings, fake_provider, send)

    assert error_view(lean) == error_view(sdk)
    assert lean.timeout
    assert fake_provider.wait_for(lambda h: h[-2].disconnected)


def test_the_providers_timeout_option_bounds_the_socket_on_the_lean_path(settings, fake_provider):
    lean_set(settings, True)
    fake_provider.script("claude-1", Reply.hang(30))

    error = complete_error(
        fake_provider.spec("anthropic", options={"timeout_s": 0.3}), request("claude-1", timeout_s=30)
    )

    assert error.timeout
    # The socket's read timeout (the option) ended it, not the call's 30 s deadline.
    assert isinstance(error.__cause__, aiohttp.ServerTimeoutError)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_refused_connection_is_the_same_transient_error_on_both_paths(settings, fake_provider, streamed):
    spec = fake_provider.spec("anthropic", base_url=f"http://127.0.0.1:{closed_port()}")
    errors = []
    for on in (True, False):
        lean_set(settings, on)
        if streamed:
            errors.append(stream_error(spec, request("claude-1"))[1])
        else:
            errors.append(complete_error(spec, request("claude-1")))

    assert error_view(errors[0]) == error_view(errors[1])
    assert type(errors[0]) is TransientError
    assert "Connection to the provider failed" in errors[0].message


def test_text_the_wire_cannot_carry_is_refused_locally_on_both_paths(settings, fake_provider):
    spec = fake_provider.spec("anthropic")
    errors = []
    for on in (True, False):
        lean_set(settings, on)
        errors.append(
            complete_error(spec, request("claude-1", messages=[{"role": "user", "content": "\ud83d"}]))
        )

    assert error_view(errors[0]) == error_view(errors[1])
    assert type(errors[0]) is RequestInvalidError and errors[0].local
    assert fake_provider.history == []


# -- When the lean path is used ----------------------------------------------------------------


def _lean_of(spec) -> Any:
    async def go() -> Any:
        client: Any = client_for(spec)
        return client.lean

    return run(go())


def test_the_lean_path_is_the_default_for_anthropic(fake_provider):
    assert _lean_of(fake_provider.spec("anthropic")) is not None


def test_the_setting_turns_the_lean_path_off(settings, fake_provider):
    lean_set(settings, False)

    assert _lean_of(fake_provider.spec("anthropic")) is None


def test_the_httpx_layer_keeps_the_sdk_path(fake_provider, httpx_layer):
    assert _lean_of(fake_provider.spec("anthropic")) is None


def test_a_provider_behind_a_proxy_from_the_environment_keeps_the_sdk_path(fake_provider, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    assert _lean_of(fake_provider.spec("anthropic")) is None


def test_an_sdk_whose_request_cannot_be_read_falls_back_to_its_own_path(fake_provider, caplog):
    spec = fake_provider.spec("anthropic")

    async def go() -> tuple[Any, Any, bool]:
        client: Any = client_for(spec)
        build = client.sdk_client._build_request

        def probe_refused(options: Any, **kwargs: Any) -> Any:
            # Refuses the lean path's probe (a request for the model alone), as a newer SDK
            # of another shape would, and builds its own requests as ever.
            if "messages" not in (options.json_data or {}):
                raise AttributeError("no such thing")
            return build(options, **kwargs)

        client.sdk_client._build_request = probe_refused
        completion = await transport_complete(spec, request("claude-1"), model_name="c")
        items = [item async for item in transport_stream(spec, request("claude-1"), model_name="c")]
        return completion, items, client.lean.broken

    completion, items, broken = run(go())

    assert completion.text and isinstance(items[-1], StreamEnd)
    assert broken
    assert all(telemetry_sent(received) for received in fake_provider.history)
    assert "anthropic SDK's request could not be read" in caplog.text
