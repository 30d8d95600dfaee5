"""Helpers for provider tests: run a coroutine on a fresh loop, closing the clients it made;
send one call through the lean HTTP path and the SDK's and compare what the fake provider
received and what came back (`both_paths`, `wire_of`, `error_view`)."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from routing.errors import ProviderError
from routing.providers.base import EmbeddingRequest, ProviderRequest, StreamEnd, StreamItem
from routing.providers.registry import aclose_clients
from routing.providers.transport import transport_complete, transport_embed, transport_stream
from tests.fake_provider import Received

T = TypeVar("T")

MESSAGES = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture
def httpx_layer(settings, monkeypatch):
    """The SDK clients on their default httpx2 stack instead of aiohttp."""
    from routing.providers.openai_style import setup as openai_style

    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "PROVIDER_HTTP": "httpx"}
    monkeypatch.setattr(openai_style, "_http_kind", None)
    yield
    monkeypatch.setattr(openai_style, "_http_kind", None)


def run(awaitable: Awaitable[T]) -> T:
    """Run on a fresh event loop in a worker thread (Playwright's sync API, once a browser test
    has run, leaves an event loop running in the test thread), with the caller's context so
    `inject_faults` blocks apply."""

    async def main() -> T:
        try:
            return await awaitable
        finally:
            await aclose_clients()

    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="provider-test") as pool:
        return pool.submit(context.run, asyncio.run, main()).result()


def request(model_id: str = "m1", **kwargs: Any) -> ProviderRequest:
    kwargs.setdefault("messages", MESSAGES)
    kwargs.setdefault("timeout_s", 5.0)
    return ProviderRequest(model_id=model_id, **kwargs)


# The helpers call the transport chokepoint; `via=` names another entry point with the same
# signature (the engine's fault-injecting wrappers, tests/routing/engine/test_faults.py).
Complete = Callable[..., Awaitable[Any]]
Stream = Callable[..., AsyncIterator[StreamItem]]


def complete(spec, req: ProviderRequest, *, model_name: str = "model", via: Complete = transport_complete):
    return run(via(spec, req, model_name=model_name))


async def collect(
    spec, req: ProviderRequest, *, model_name: str = "model", via: Stream = transport_stream
) -> list[StreamItem]:
    return [item async for item in via(spec, req, model_name=model_name)]


def stream(
    spec, req: ProviderRequest, *, model_name: str = "model", via: Stream = transport_stream
) -> list[StreamItem]:
    return run(collect(spec, req, model_name=model_name, via=via))


def complete_error(
    spec, req: ProviderRequest, *, model_name: str = "model", via: Complete = transport_complete
) -> ProviderError:
    try:
        complete(spec, req, model_name=model_name, via=via)
    except ProviderError as exc:
        return exc
    raise AssertionError("the call succeeded")


def stream_error(
    spec, req: ProviderRequest, *, model_name: str = "model", via: Stream = transport_stream
) -> tuple[list, ProviderError]:
    items: list = []

    async def go() -> ProviderError:
        try:
            async for item in via(spec, req, model_name=model_name):
                items.append(item)
        except ProviderError as exc:
            return exc
        raise AssertionError("the stream succeeded")

    return items, run(go())


def embed(spec, req: EmbeddingRequest, *, model_name: str = "model"):
    return run(transport_embed(spec, req, model_name=model_name))


def embed_error(spec, req: EmbeddingRequest, *, model_name: str = "model") -> ProviderError:
    try:
        embed(spec, req, model_name=model_name)
    except ProviderError as exc:
        return exc
    raise AssertionError("the call succeeded")


# -- The lean HTTP path against the SDK's ---------------------------------------------------


def lean_set(settings, on: bool) -> None:
    """`PROVIDER_LEAN_HTTP` on or off (clients made from now on take it)."""
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "PROVIDER_LEAN_HTTP": on}


def both_paths(
    settings, fake_provider, send: Callable[[], Any], *, requests: int = 1
) -> tuple[Any, Any, list[Received], list[Received]]:
    """`send()` through the lean path, then the SDK's: (lean result, SDK result, what the fake
    provider received from each: `requests` requests per send)."""
    results = []
    received: list[list[Received]] = []
    for on in (True, False):
        lean_set(settings, on)
        before = len(fake_provider.history)
        results.append(send())
        assert len(fake_provider.history) == before + requests
        received.append(fake_provider.history[before:])
    return results[0], results[1], received[0], received[1]


# Said by the SDK's HTTP layer and not by aiohttp (which keeps connections alive all the same).
TRANSPORT_HEADERS = frozenset({"connection"})


def wire_of(received: Received, *, headers: tuple[str, ...] | None = None) -> dict[str, Any]:
    """What a provider reads of a request: method, path, query, body and headers (those named,
    or all but the SDK's x-stainless-* telemetry and `connection`)."""
    sent: dict[str, str | None]
    if headers is None:
        sent = {
            name: value
            for name, value in received.headers.items()
            if not name.startswith("x-stainless-") and name not in TRANSPORT_HEADERS
        }
    else:
        sent = {name: received.headers.get(name) for name in headers}
    return {
        "method": received.method,
        "path": received.path,
        "query": received.query,
        "body": received.body,
        "headers": sent,
    }


def telemetry_sent(received: Received) -> bool:
    """Whether the SDK's x-stainless-* headers came (the SDK path sends them, the lean one not)."""
    return any(name.startswith("x-stainless-") for name in received.headers)


def result_view(result: Any) -> Any:
    """A completion, embeddings or stream's items without their timings."""
    if isinstance(result, list):
        return [
            dataclasses.replace(item, latency_ms=0.0, ttft_ms=None) if isinstance(item, StreamEnd) else item
            for item in result
        ]
    view = dataclasses.asdict(result)
    view.pop("latency_ms", None)
    view.pop("ttft_ms", None)
    return view


def error_view(error: ProviderError) -> dict[str, Any]:
    retry_after = error.retry_after_s
    return {
        "class": type(error).__name__,
        "message": error.message,
        "http_status": error.http_status,
        "retry_after_s": round(retry_after, 1) if retry_after is not None else None,
        "timeout": error.timeout,
        "local": getattr(error, "local", False),
        "partial_text": error.partial_text,
    }


def closed_port() -> int:
    """A loopback port nothing listens on (a refused connection)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
