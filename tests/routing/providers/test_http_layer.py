"""The HTTP layer under the SDK clients (aiohttp by default, httpx2 on request) and the
OpenAI JSON reader the non-streamed path uses."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from routing.engine.types import Usage
from routing.errors import ModelPermanentError, TransientError
from routing.providers.anthropic import completion_from_anthropic_json
from routing.providers.openai_style import completion_from_openai_json
from routing.providers.registry import client_for
from tests.fake_provider import Reply
from tests.routing.providers.conftest import complete, complete_error, request, run

KINDS = ["openai", "anthropic", "gemini"]


def _http(client: Any) -> Any:
    """The HTTP client under a provider client (Gemini's holds it itself, the others' SDK does)."""
    return client.http if hasattr(client, "http") else client.sdk_client._client


def _session(client: Any) -> Any:
    """The aiohttp session a provider client's chat completions went through (the lean HTTP
    path's own, or the one under the SDK's transport)."""
    lean = getattr(client, "lean", None)
    return lean.session if lean is not None else _http(client)._transport.client


def _transport_name(spec) -> str:
    async def go() -> str:
        client: Any = client_for(spec)
        return type(_http(client)._transport).__name__

    return run(go())


@pytest.mark.parametrize("kind", KINDS)
def test_the_sdk_clients_use_the_aiohttp_transport_by_default(fake_provider, kind):
    assert _transport_name(fake_provider.spec(kind)) == "AiohttpTransport"


@pytest.mark.parametrize("kind", KINDS)
def test_the_httpx_layer_can_be_chosen_in_settings(fake_provider, httpx_layer, kind):
    assert _transport_name(fake_provider.spec(kind)) == "AsyncHTTPTransport"


@pytest.mark.parametrize("kind", KINDS)
def test_the_httpx_layer_completes_and_maps_a_reset_the_same_way(fake_provider, httpx_layer, kind):
    fake_provider.script("m1", Reply.ok("Paris.", input_tokens=7, output_tokens=1), Reply.reset())

    completion = complete(fake_provider.spec(kind), request("m1"))
    error = complete_error(fake_provider.spec(kind), request("m1"))

    assert completion.text == "Paris."
    assert completion.usage == Usage(input_tokens=7, output_tokens=1)
    assert type(error) is TransientError
    assert not error.timeout


@pytest.mark.parametrize("kind", KINDS)
def test_a_hang_is_a_timeout_on_the_aiohttp_layer(fake_provider, kind):
    fake_provider.script("m1", Reply.hang())

    error = complete_error(fake_provider.spec(kind), request("m1", timeout_s=0.3))

    assert type(error) is TransientError
    assert error.timeout


def test_the_reader_takes_text_finish_reason_and_usage_with_cached_tokens():
    body = (
        b'{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":9,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":4}}}'
    )

    completion = completion_from_openai_json(body)

    assert (completion.text, completion.finish_reason) == ("Hi", "stop")
    assert completion.usage == Usage(input_tokens=9, output_tokens=1, cached_tokens=4)


def test_the_reader_reads_a_tool_call_answer_as_empty_text():
    body = b'{"choices":[{"message":{"content":null,"tool_calls":[]},"finish_reason":"tool_calls"}]}'

    completion = completion_from_openai_json(body)

    assert (completion.text, completion.finish_reason, completion.usage) == ("", "tool_calls", Usage())


@pytest.mark.parametrize("body", [b"<html>busy</html>", b"[1, 2]", b'"text"', b"{}", b'{"choices": []}'])
def test_an_unreadable_or_empty_answer_is_transient(body):
    with pytest.raises(TransientError):
        completion_from_openai_json(body)


def test_a_content_filtered_answer_is_model_permanent():
    body = b'{"choices":[{"message":{"content":""},"finish_reason":"content_filter"}]}'

    with pytest.raises(ModelPermanentError):
        completion_from_openai_json(body)


def test_the_anthropic_reader_joins_text_blocks_and_counts_cache_tokens_as_input():
    body = (
        b'{"content":[{"type":"text","text":"Hel"},{"type":"thinking","thinking":"hm","signature":"s"},{"type":"text","text":"lo"}],'
        b'"stop_reason":"max_tokens","usage":{"input_tokens":5,"output_tokens":2,'
        b'"cache_read_input_tokens":3,"cache_creation_input_tokens":1}}'
    )

    completion = completion_from_anthropic_json(body)

    assert (completion.text, completion.finish_reason) == ("Hello", "length")
    assert completion.usage == Usage(input_tokens=9, output_tokens=2, cached_tokens=3)


@pytest.mark.parametrize("body", [b"<html>busy</html>", b"[]", b"{}", b'{"content": "text"}'])
def test_an_unreadable_anthropic_answer_is_transient(body):
    with pytest.raises(TransientError):
        completion_from_anthropic_json(body)


def test_an_anthropic_refusal_is_model_permanent():
    with pytest.raises(ModelPermanentError):
        completion_from_anthropic_json(b'{"content":[],"stop_reason":"refusal","usage":{}}')


@pytest.mark.parametrize("kind", KINDS)
def test_clients_made_on_a_loop_are_closed_when_the_loop_ends(fake_provider, kind):
    spec = fake_provider.spec(kind)

    async def go() -> Any:
        client: Any = client_for(spec)
        await client.complete(request("m1"))
        return _session(client)

    # asyncio.run without aclose_clients() (in a worker thread: a browser test may have left a
    # loop running in this one): the loop's shutdown closes the client's session.
    with ThreadPoolExecutor(max_workers=1) as pool:
        session = pool.submit(asyncio.run, go()).result()

    assert session.closed
