"""Every network kind, through the real SDK clients, against the fake provider server."""

from __future__ import annotations

import asyncio

import pytest

from routing.engine.types import Usage
from routing.errors import ModelPermanentError, ProviderKeyMissing, RequestInvalidError, TransientError
from routing.providers.base import StreamEnd
from routing.providers.transport import transport_stream
from tests.fake_provider import AZURE_API_VERSION, FAKE_KEY, Reply
from tests.routing.providers.conftest import complete, complete_error, request, run, stream, stream_error

KINDS = ["openai", "azure_openai", "gemini", "openai_compatible", "anthropic"]
OPENAI_KINDS = ["openai", "azure_openai", "openai_compatible"]


@pytest.mark.parametrize("kind", KINDS)
def test_it_completes_with_text_usage_and_latency(fake_provider, kind):
    fake_provider.script("m1", Reply.ok("Paris is the capital.", input_tokens=12, output_tokens=4))

    completion = complete(fake_provider.spec(kind), request("m1"))

    assert completion.text == "Paris is the capital."
    assert completion.finish_reason == "stop"
    assert completion.usage == Usage(input_tokens=12, output_tokens=4, cached_tokens=0)
    assert completion.latency_ms > 0
    assert not completion.simulated
    assert len(fake_provider.history) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_it_streams_deltas_then_one_end_with_usage(fake_provider, kind):
    fake_provider.script("m1", Reply.ok("Paris is the capital.", input_tokens=12))

    items = stream(fake_provider.spec(kind), request("m1"))

    deltas, end = items[:-1], items[-1]
    assert all(isinstance(d, str) for d in deltas)
    assert "".join(deltas) == "Paris is the capital."  # type: ignore[arg-type]
    assert isinstance(end, StreamEnd)
    assert end.usage == Usage(input_tokens=12, output_tokens=4, cached_tokens=0)
    assert end.finish_reason == "stop"
    assert end.ttft_ms is not None and 0 < end.ttft_ms <= end.latency_ms
    assert fake_provider.history[0].stream


def test_the_request_timeout_reaches_the_sdk_and_its_retries_are_off(fake_provider, settings):
    # The anthropic SDK reports its per-request timeout in a header (on its own path: the lean
    # HTTP path sends no x-stainless-* telemetry); openai's does not.
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "PROVIDER_LEAN_HTTP": False}
    complete(fake_provider.spec("anthropic"), request("m1", timeout_s=7.5))

    headers = fake_provider.history[0].headers
    assert float(headers["x-stainless-timeout"]) == 7.5
    assert headers["x-stainless-retry-count"] == "0"


@pytest.mark.parametrize("kind", OPENAI_KINDS)
def test_openai_streams_ask_for_usage(fake_provider, kind):
    stream(fake_provider.spec(kind), request("m1"))

    assert fake_provider.history[0].body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("kind", KINDS)
def test_cached_prompt_tokens_are_reported_within_input_tokens(fake_provider, kind):
    fake_provider.script("m1", Reply.ok("ok", input_tokens=100, output_tokens=1, cached_tokens=60))
    fake_provider.script("m1", Reply.ok("ok", input_tokens=100, output_tokens=1, cached_tokens=60))
    spec = fake_provider.spec(kind)

    assert complete(spec, request("m1")).usage == Usage(100, 1, 60)
    end = stream(spec, request("m1"))[-1]
    assert isinstance(end, StreamEnd) and end.usage == Usage(100, 1, 60)


def test_openai_sends_the_key_model_and_max_completion_tokens(fake_provider):
    complete(fake_provider.spec("openai"), request("gpt-4o", max_tokens=50, temperature=0.3))

    received = fake_provider.history[0]
    assert received.path == "/v1/chat/completions"
    assert received.headers["authorization"] == f"Bearer {FAKE_KEY}"
    assert received.body["model"] == "gpt-4o"
    assert received.body["max_completion_tokens"] == 50
    assert received.body["temperature"] == 0.3
    assert received.body["messages"][0] == {"role": "system", "content": "Answer briefly."}


def test_azure_puts_the_deployment_and_api_version_in_the_url(fake_provider):
    complete(fake_provider.spec("azure_openai"), request("my-gpt4o-deployment"))

    received = fake_provider.history[0]
    assert received.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
    assert received.query["api-version"] == AZURE_API_VERSION
    assert received.headers["api-key"] == FAKE_KEY
    assert received.model == "my-gpt4o-deployment"


def test_openai_compatible_sends_max_tokens(fake_provider):
    complete(fake_provider.spec("openai_compatible"), request("m1", max_tokens=77))

    assert fake_provider.history[0].body["max_tokens"] == 77


def test_openai_compatible_needs_no_key_variable(fake_provider):
    spec = fake_provider.spec("openai_compatible", api_key_env="")

    assert complete(spec, request("llama3")).text
    assert fake_provider.history[0].headers["authorization"].startswith("Bearer ")


def test_anthropic_moves_the_system_prompt_and_defaults_max_tokens(fake_provider):
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Hello"},
        {"role": "user", "content": "Are you there?"},
    ]

    complete(fake_provider.spec("anthropic"), request("claude-x", messages=messages))

    received = fake_provider.history[0]
    assert received.path == "/v1/messages"
    assert FAKE_KEY in (received.headers.get("x-api-key", "") + received.headers.get("authorization", ""))
    assert received.body["system"] == "Be terse."
    assert received.body["max_tokens"] == 1024
    assert received.body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "Are you there?"}],
        }
    ]


# -- Error mapping ----------------------------------------------------------------------------

ERROR_CASES = [
    ("rate_limit", Reply.rate_limit(retry_after=2), TransientError, 429),
    ("server_error", Reply.server_error(), TransientError, 500),
    ("unavailable", Reply.server_error(503), TransientError, 503),
    ("bad_request", Reply.bad_request(), RequestInvalidError, 400),
    ("unauthorized", Reply.unauthorized(), ModelPermanentError, 401),
    ("forbidden", Reply.forbidden(), ModelPermanentError, 403),
    ("model_not_found", Reply.model_not_found(), ModelPermanentError, 404),
    ("context_length", Reply.context_length(), ModelPermanentError, 400),
    ("content_filter", Reply.content_filter(), ModelPermanentError, 400),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("case", "reply", "error_class", "status"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES]
)
def test_it_maps_http_errors_to_our_classes(fake_provider, kind, case, reply, error_class, status):
    fake_provider.script("m1", reply)

    error = complete_error(fake_provider.spec(kind), request("m1"))

    assert type(error) is error_class
    # Gemini blocks a prompt in a 200 answer (promptFeedback.blockReason), not with a status.
    assert error.http_status == (None if (kind, case) == ("gemini", "content_filter") else status)
    assert error.latency_ms is not None and error.latency_ms > 0
    assert len(fake_provider.history) == 1  # the SDK's own retries are off


@pytest.mark.parametrize("kind", KINDS)
def test_it_maps_context_length_errors_with_a_clear_reason(fake_provider, kind):
    fake_provider.script("m1", Reply.context_length())

    error = complete_error(fake_provider.spec(kind), request("m1"))

    assert "Context too long" in str(error)


@pytest.mark.parametrize("kind", KINDS)
def test_it_honours_retry_after_in_seconds_and_milliseconds(fake_provider, kind):
    fake_provider.script("m1", Reply.rate_limit(retry_after=7), Reply.rate_limit(retry_after_ms=1500))
    spec = fake_provider.spec(kind)

    assert complete_error(spec, request("m1")).retry_after_s == 7.0
    assert complete_error(spec, request("m1")).retry_after_s == 1.5


@pytest.mark.parametrize("kind", KINDS)
def test_a_429_without_retry_after_leaves_it_unset(fake_provider, kind):
    fake_provider.script("m1", Reply.rate_limit())

    assert complete_error(fake_provider.spec(kind), request("m1")).retry_after_s is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_hanging_provider_times_out_and_is_disconnected(fake_provider, kind):
    fake_provider.script("m1", Reply.hang(30))

    error = complete_error(fake_provider.spec(kind), request("m1", timeout_s=0.3))

    assert type(error) is TransientError
    assert error.timeout
    assert error.latency_ms is not None and error.latency_ms < 10_000
    assert fake_provider.wait_for(lambda h: h and h[0].disconnected)


@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_that_hangs_before_its_first_token_times_out(fake_provider, kind):
    fake_provider.script("m1", Reply.slow(ttft_s=30))

    items, error = stream_error(fake_provider.spec(kind), request("m1", timeout_s=0.3))

    assert items == []
    assert error.timeout and type(error) is TransientError
    assert error.partial_text == ""


@pytest.mark.parametrize("kind", KINDS)
def test_a_connection_reset_is_transient(fake_provider, kind):
    fake_provider.script("m1", Reply.reset())

    error = complete_error(fake_provider.spec(kind), request("m1"))

    assert type(error) is TransientError
    assert not error.timeout
    assert error.http_status is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_body_cut_halfway_is_transient(fake_provider, kind):
    fake_provider.script("m1", Reply.stream_cut())

    assert type(complete_error(fake_provider.spec(kind), request("m1"))) is TransientError


@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_cut_midway_fails_with_the_partial_text(fake_provider, kind):
    fake_provider.script("m1", Reply.stream_cut(after_tokens=3, text="one two three four five six"))

    items, error = stream_error(fake_provider.spec(kind), request("m1"))

    assert items == ["one", " two", " three"]
    assert type(error) is TransientError
    assert error.partial_text == "one two three"
    assert error.output_tokens_so_far == 3
    assert error.latency_ms is not None and error.latency_ms > 0


@pytest.mark.parametrize("kind", KINDS)
def test_an_error_event_midstream_is_transient_with_the_partial_text(fake_provider, kind):
    fake_provider.script("m1", Reply.stream_error(after_tokens=2, text="alpha beta gamma delta"))

    items, error = stream_error(fake_provider.spec(kind), request("m1"))

    assert items == ["alpha", " beta"]
    assert type(error) is TransientError
    assert error.partial_text == "alpha beta"


@pytest.mark.parametrize("kind", KINDS)
def test_a_stream_refused_before_its_first_token_carries_no_partial_text(fake_provider, kind):
    fake_provider.script("m1", Reply.rate_limit(retry_after=1))

    items, error = stream_error(fake_provider.spec(kind), request("m1"))

    assert items == []
    assert error.http_status == 429 and error.retry_after_s == 1.0
    assert error.partial_text == "" and error.output_tokens_so_far == 0


# -- Cancellation -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_closing_a_stream_early_disconnects_upstream(fake_provider, kind):
    long_text = " ".join(f"w{i}" for i in range(500))
    fake_provider.script("m1", Reply.slow(token_interval_s=0.02, text=long_text))

    async def read_two_then_close() -> list:
        received = []
        iterator = transport_stream(fake_provider.spec(kind), request("m1"), model_name="model")
        async for item in iterator:
            received.append(item)
            if len(received) == 2:
                break
        await iterator.aclose()
        return received

    assert run(read_two_then_close()) == ["w0", " w1"]
    assert fake_provider.wait_for(lambda h: h and h[0].disconnected)
    assert not fake_provider.history[0].completed


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_cancelling_the_consumer_task_disconnects_upstream(fake_provider, kind):
    long_text = " ".join(f"w{i}" for i in range(500))
    fake_provider.script("m1", Reply.slow(token_interval_s=0.02, text=long_text))

    async def consume_until_cancelled() -> None:
        first = asyncio.Event()

        async def consume() -> None:
            async for _item in transport_stream(fake_provider.spec(kind), request("m1"), model_name="model"):
                first.set()

        task = asyncio.create_task(consume())
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(consume_until_cancelled())
    assert fake_provider.wait_for(lambda h: h and h[0].disconnected)


# -- Keys -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_key_raises_key_missing_and_sends_nothing(fake_provider, kind, monkeypatch):
    monkeypatch.delenv("ORCH_TEST_UNSET_KEY", raising=False)
    spec = fake_provider.spec(kind, api_key_env="ORCH_TEST_UNSET_KEY")

    with pytest.raises(ProviderKeyMissing, match="ORCH_TEST_UNSET_KEY"):
        complete(spec, request("m1"))
    with pytest.raises(ProviderKeyMissing, match="ORCH_TEST_UNSET_KEY"):
        stream(spec, request("m1"))

    assert fake_provider.history == []


def test_a_key_set_after_a_failure_is_picked_up(fake_provider, monkeypatch):
    monkeypatch.delenv("ORCH_TEST_LATE_KEY", raising=False)
    spec = fake_provider.spec("openai", api_key_env="ORCH_TEST_LATE_KEY")

    async def twice() -> str:
        with pytest.raises(ProviderKeyMissing):
            await _complete(spec)
        monkeypatch.setenv("ORCH_TEST_LATE_KEY", "sk-late")
        return (await _complete(spec)).text

    assert run(twice())
    assert fake_provider.history[0].headers["authorization"] == "Bearer sk-late"


async def _complete(spec):
    from routing.providers.transport import transport_complete

    return await transport_complete(spec, request("m1"), model_name="model")


# -- Provider options ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_default_headers_from_the_options_are_sent(fake_provider, kind):
    spec = fake_provider.spec(kind, options={"default_headers": {"X-Team": "search"}})

    complete(spec, request("m1"))

    assert fake_provider.history[0].headers["x-team"] == "search"


def test_the_provider_timeout_option_caps_the_sdk_timeout(fake_provider, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "PROVIDER_LEAN_HTTP": False}  # see above
    spec = fake_provider.spec("anthropic", options={"timeout_s": 2})

    complete(spec, request("m1", timeout_s=30))

    assert float(fake_provider.history[0].headers["x-stainless-timeout"]) == 2


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_connection_limit_still_completes_concurrent_calls(fake_provider, kind):
    spec = fake_provider.spec(kind, options={"max_connections": 1})
    fake_provider.script("m1", *[Reply.slow(latency_s=0.05, text=f"answer {i}") for i in range(3)])

    async def three():
        from routing.providers.transport import transport_complete

        return await asyncio.gather(
            *(transport_complete(spec, request("m1"), model_name="m") for _ in range(3))
        )

    texts = sorted(c.text for c in run(three()))

    assert texts == ["answer 0", "answer 1", "answer 2"]
    assert len({r.connection for r in fake_provider.history}) == 1  # queued on the one connection


def test_without_a_limit_concurrent_calls_use_several_connections(fake_provider):
    spec = fake_provider.spec("openai")
    fake_provider.script("m1", *[Reply.slow(latency_s=0.05) for _ in range(3)])

    async def three():
        from routing.providers.transport import transport_complete

        return await asyncio.gather(
            *(transport_complete(spec, request("m1"), model_name="m") for _ in range(3))
        )

    run(three())

    assert len({r.connection for r in fake_provider.history}) == 3


def test_invalid_network_options_fail_permanently_before_sending(fake_provider):
    error = complete_error(fake_provider.spec("openai", options={"timeout_s": -1}), request("m1"))

    assert type(error) is ModelPermanentError
    assert "timeout_s" in str(error)
    assert fake_provider.history == []
