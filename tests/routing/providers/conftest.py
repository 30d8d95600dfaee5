"""Helpers for provider tests: run a coroutine on a fresh loop, closing the clients it made."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from routing.errors import ProviderError
from routing.providers.base import ProviderRequest, StreamItem
from routing.providers.registry import aclose_clients
from routing.providers.transport import transport_complete, transport_stream

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
