"""Embeddings on the lean HTTP path (routing/providers/openai_style/lean.py) against the SDK's
own path, for the OpenAI-style kinds: the same requests on the wire (Azure's deployment path
included), the same vectors, the same errors.

Each parity test sends one call through each path (`PROVIDER_LEAN_HTTP` on, then off) to the
fake provider and compares what it received and what came back."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from routing.errors import ProviderError, TransientError
from routing.providers.base import EmbeddingRequest
from routing.providers.openai_style.embed import EMBEDDINGS_PATH
from routing.providers.registry import client_for
from tests.fake_provider import Reply
from tests.routing.providers.conftest import (
    both_paths,
    closed_port,
    embed,
    embed_error,
    error_view,
    lean_set,
    result_view,
    run,
    telemetry_sent,
    wire_of,
)

OPENAI_KINDS = ["openai", "azure_openai", "openai_compatible"]

CASES: dict[str, dict[str, Any]] = {
    "one text": {"inputs": ["hello"]},
    "dimensions": {"inputs": ["alpha", "beta gamma"], "dimensions": 32},
    "user": {"inputs": ["alpha"], "user": "user-42"},
    "a batch of texts and unicode": {"inputs": ["Grüße", "東京 🎉", "", "a\u2028b"], "dimensions": 16},
    "token arrays": {"inputs": [[1, 2, 3], [4], [2**31 - 1]]},
}


def _request(case: str, **overrides: Any) -> EmbeddingRequest:
    fields = {"model_id": "emb-1", "timeout_s": 5.0, **CASES[case], **overrides}
    return EmbeddingRequest(**fields)


def _spec(fake_provider, kind: str, **options: Any):
    return fake_provider.spec(kind, options={"default_headers": {"X-Custom": "yes"}, **options})


# -- The requests on the wire ----------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("kind", OPENAI_KINDS)
def test_an_embeddings_request_carries_every_parameter_the_sdk_path_sends(
    settings, fake_provider, kind, case
):
    spec = _spec(fake_provider, kind)

    lean, sdk, [lean_received], [sdk_received] = both_paths(
        settings, fake_provider, lambda: embed(spec, _request(case))
    )

    assert wire_of(lean_received) == wire_of(sdk_received)
    assert lean_received.embeddings and lean_received.headers["x-custom"] == "yes"
    assert not telemetry_sent(lean_received) and telemetry_sent(sdk_received)  # each path really ran
    assert result_view(lean) == result_view(sdk)


@pytest.mark.parametrize("kind", OPENAI_KINDS)
def test_a_batch_above_the_limit_is_split_into_the_same_requests_on_both_paths(settings, fake_provider, kind):
    spec = _spec(fake_provider, kind, embed_batch_max=2)
    req = EmbeddingRequest(model_id="emb-1", inputs=["a", "b", "c", "d", "e"], dimensions=8)

    lean, sdk, lean_received, sdk_received = both_paths(
        settings, fake_provider, lambda: embed(spec, req), requests=3
    )

    assert [wire_of(r) for r in lean_received] == [wire_of(r) for r in sdk_received]
    assert [r.body["input"] for r in lean_received] == [["a", "b"], ["c", "d"], ["e"]]
    assert result_view(lean) == result_view(sdk)
    assert len(lean.vectors) == 5


def test_azure_embeddings_go_to_the_deployment_with_the_api_version_and_api_key(settings, fake_provider):
    lean_set(settings, True)

    embed(fake_provider.spec("azure_openai"), EmbeddingRequest(model_id="my embedder", inputs=["hi"]))

    received = fake_provider.history[-1]
    assert received.path == "/openai/deployments/my%20embedder/embeddings"
    assert received.query == {"api-version": "2024-10-21"}
    assert received.headers["api-key"] and "authorization" not in received.headers
    assert not telemetry_sent(received)


def test_chat_and_embeddings_of_one_client_keep_their_own_targets(fake_provider):
    spec = fake_provider.spec("azure_openai")

    async def go() -> tuple[Any, Any]:
        client: Any = client_for(spec)
        embeddings = await client.lean.target(EMBEDDINGS_PATH, "dep")
        chat = await client.lean.target("/chat/completions", "dep")
        return embeddings, chat

    embeddings, chat = run(go())

    assert embeddings.url.endswith("/openai/deployments/dep/embeddings?api-version=2024-10-21")
    assert chat.url.endswith("/openai/deployments/dep/chat/completions?api-version=2024-10-21")
    assert embeddings.headers == chat.headers


def test_embeddings_on_the_lean_path_reuse_one_connection(settings, fake_provider):
    lean_set(settings, True)
    spec = fake_provider.spec("openai")

    async def three() -> None:
        from routing.providers.transport import transport_embed

        for _ in range(3):
            await transport_embed(spec, _request("one text"), model_name="emb")

    run(three())

    assert len({received.connection for received in fake_provider.history}) == 1
    assert not any(telemetry_sent(received) for received in fake_provider.history)


# -- Errors ------------------------------------------------------------------------------------

STATUS_REPLIES = {
    "400": lambda: Reply.bad_request("Invalid value for 'dimensions'."),
    "401": lambda: Reply.unauthorized(),
    "403": lambda: Reply.forbidden(),
    "404": lambda: Reply.model_not_found(),
    "408": lambda: Reply(kind="error", status=408, error_type="timeout", message="Request timed out."),
    "409": lambda: Reply(kind="error", status=409, error_type="conflict", message="Try again."),
    "422": lambda: Reply(kind="error", status=422, error_type="invalid_request_error", message="Bad input."),
    "429 with retry-after": lambda: Reply.rate_limit(retry_after=2),
    "429 with retry-after-ms": lambda: Reply.rate_limit(retry_after_ms=1500),
    "500": lambda: Reply.server_error(500),
    "503": lambda: Reply.server_error(503),
    "context too long": lambda: Reply.context_length(),
    "an echoed key": lambda: Reply.echo_auth(),
    "reset": lambda: Reply.reset(),
    "body cut short": lambda: Reply.stream_cut(),
}


@pytest.mark.parametrize("reply", list(STATUS_REPLIES))
@pytest.mark.parametrize("kind", OPENAI_KINDS)
def test_a_failed_embeddings_call_maps_to_the_same_error_on_both_paths(settings, fake_provider, kind, reply):
    spec = fake_provider.spec(kind)

    def send() -> ProviderError:
        fake_provider.script("emb-1", STATUS_REPLIES[reply]())
        return embed_error(spec, _request("dimensions"))

    lean, sdk, _, _ = both_paths(settings, fake_provider, send)

    assert error_view(lean) == error_view(sdk)


def test_a_retry_after_on_embeddings_is_honoured_on_the_lean_path(settings, fake_provider):
    lean_set(settings, True)
    fake_provider.script("emb-1", Reply.rate_limit(retry_after=2))

    error = embed_error(fake_provider.spec("openai"), _request("one text"))

    assert type(error) is TransientError
    assert (error.http_status, error.retry_after_s) == (429, 2.0)


def test_a_hang_is_the_same_timeout_on_both_paths(settings, fake_provider):
    spec = fake_provider.spec("openai")

    def send() -> ProviderError:
        fake_provider.script("emb-1", Reply.hang(30))
        return embed_error(spec, _request("one text", timeout_s=0.3))

    lean, sdk, _, _ = both_paths(settings, fake_provider, send)

    assert error_view(lean) == error_view(sdk)
    assert lean.timeout
    assert fake_provider.wait_for(lambda h: h[-2].disconnected)


def test_the_providers_timeout_option_bounds_the_socket_on_the_lean_path(settings, fake_provider):
    lean_set(settings, True)
    fake_provider.script("emb-1", Reply.hang(30))

    error = embed_error(
        fake_provider.spec("openai", options={"timeout_s": 0.3}), _request("one text", timeout_s=30)
    )

    assert error.timeout
    # The socket's read timeout (the option) ended it, not the call's 30 s deadline.
    assert isinstance(error.__cause__, aiohttp.ServerTimeoutError)


def test_a_refused_connection_is_the_same_transient_error_on_both_paths(settings, fake_provider):
    spec = fake_provider.spec("openai", base_url=f"http://127.0.0.1:{closed_port()}/v1")
    errors = []
    for on in (True, False):
        lean_set(settings, on)
        errors.append(embed_error(spec, _request("one text")))

    assert error_view(errors[0]) == error_view(errors[1])
    assert type(errors[0]) is TransientError
    assert "Connection to the provider failed" in errors[0].message
