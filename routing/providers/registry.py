"""Provider kinds, registered in one place: one `Kind` entry per kind in `KINDS`.

An entry names everything the rest of the app derives: the dotted path of the kind's
`make_client(spec)` (imported lazily, the plugin mechanism), its label (the admin's choices,
`routing.models.ProviderKind`), its option schema (`routing.schemas`), its provider id in the
genai-prices catalogue (`routing.pricing`) and what its providers need (a key, a base URL,
an API version). Adding a kind: copy a folder under `routing/providers/` and add one entry
(docs/providers.md). Projects can add client factories without editing this file through
`settings.ORCHESTRATOR["PROVIDER_KINDS"] = {"kind": "dotted.path.make_client"}`.

Async SDK clients hold connection pools bound to the event loop they were first used on,
so `client_for` caches one client per provider spec AND per running loop. A cached client
is replaced when the spec's options change (an operator edited the provider).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import weakref
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from routing.providers.base import (
    ChatOptions,
    EmbeddingRequest,
    ProviderClient,
    ProviderSpec,
    SamplingOptions,
)
from routing.providers.options import NetworkOptions, Options
from routing.providers.simulated.options import SimulatedOptions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Kind:
    """One provider kind: where its client is and what the rest of the app needs to know."""

    name: str
    label: str
    client: str  # dotted path of make_client(spec) -> ProviderClient, imported lazily
    options: type[Options] = NetworkOptions  # the schema of a provider's `options`
    prices: str | None = None  # its provider id in the genai-prices catalogue; None: no prices
    keyless: bool = False  # needs no secret at all
    key_optional: bool = False  # may be left without a key variable (local servers)
    base_url_required: str = ""  # the error when its base URL is empty ("" : optional)
    api_version_required: str = ""  # the error when its API version is empty ("" : optional)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("openai", "OpenAI", "routing.providers.openai.make_client", prices="openai"),
        Kind(
            "azure_openai",
            "Azure OpenAI",
            "routing.providers.azure_openai.make_client",
            prices="azure",
            base_url_required="Azure OpenAI needs its endpoint URL.",
            api_version_required="Azure OpenAI needs an API version, e.g. 2024-10-21.",
        ),
        Kind("anthropic", "Anthropic", "routing.providers.anthropic.make_client", prices="anthropic"),
        Kind("gemini", "Gemini", "routing.providers.gemini.make_client", prices="google"),
        Kind(
            "openai_compatible",
            "OpenAI-compatible (Ollama, vLLM, …)",
            "routing.providers.openai_compatible.make_client",
            key_optional=True,
            base_url_required="An OpenAI-compatible server needs its base URL.",
        ),
        Kind(
            "simulated",
            "Simulated (no network)",
            "routing.providers.simulated.make_client",
            options=SimulatedOptions,
            keyless=True,
        ),
    )
}

# Derived: kind → dotted path of its client factory (the built-ins).
PROVIDER_KINDS: dict[str, str] = {name: kind.client for name, kind in KINDS.items()}


def kind_choices() -> list[tuple[str, str]]:
    """(value, label) of every kind, for `Provider.kind` (a callable: no migration per kind)."""
    return [(name, kind.label) for name, kind in KINDS.items()]


Factory = Callable[[ProviderSpec], ProviderClient]

_factories: dict[str, Factory] = {}
# loop → {spec: (options the client was made with, client)}
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[ProviderSpec, tuple[dict, Any]]] = (
    weakref.WeakKeyDictionary()
)


class UnknownProviderKind(LookupError):
    pass


def provider_kinds() -> dict[str, str]:
    """Every known kind → dotted path of its factory (built-ins plus the settings' extras)."""
    kinds = dict(PROVIDER_KINDS)
    with contextlib.suppress(Exception):  # settings not configured (a plain script): built-ins only
        kinds.update(getattr(settings, "ORCHESTRATOR", {}).get("PROVIDER_KINDS", {}))
    return kinds


def factory_for(kind: str) -> Factory:
    factory = _factories.get(kind)
    if factory is None:
        path = provider_kinds().get(kind)
        if path is None:
            raise UnknownProviderKind(f"Unknown provider kind {kind!r}.")
        module_path, _, attr = path.rpartition(".")
        factory = getattr(importlib.import_module(module_path), attr)
        _factories[kind] = factory
    return factory


Refusal = Callable[[SamplingOptions], "tuple[str, str] | None"]
ChatRefusal = Callable[[ChatOptions], "tuple[str, str] | None"]
_modules: dict[str, Any] = {}


def _kind_module(kind: str) -> Any:
    """The module holding the kind's `make_client` (None for an unknown kind)."""
    if kind not in _modules:
        path = provider_kinds().get(kind)
        _modules[kind] = importlib.import_module(path.rpartition(".")[0]) if path else None
    return _modules[kind]


def sampling_refusal_for(kind: str) -> Refusal | None:
    """The kind's `sampling_refusal(options) -> (param, reason) | None`, defined next to its
    `make_client` when the kind cannot honour some sampling option (None: it honours or
    ignores them all). The engine passes a model over when its kind refuses the options."""
    return getattr(_kind_module(kind), "sampling_refusal", None)


def chat_refusal_for(kind: str) -> ChatRefusal | None:
    """The kind's `chat_refusal(options: ChatOptions) -> (param, reason) | None`, next to its
    `make_client` when the kind cannot honour some chat option (logprobs, reasoning_effort…);
    None: it honours them all. The engine passes a model over when its kind refuses them."""
    return getattr(_kind_module(kind), "chat_refusal", None)


def native_n_for(kind: str) -> bool:
    """True when the kind answers `n > 1` itself (its module says `NATIVE_N = True`); else
    the engine makes n attempts and merges them."""
    return bool(getattr(_kind_module(kind), "NATIVE_N", False))


EmbedRefusal = Callable[[EmbeddingRequest], "tuple[str, str] | None"]


def embed_refusal_for(kind: str) -> EmbedRefusal | None:
    """The kind's `embed_refusal(request) -> (param, reason) | None`, defined next to its
    `make_client` when the kind cannot take some embeddings requests (Gemini: token arrays).
    The engine passes such a model over, as for a sampling refusal."""
    return getattr(_kind_module(kind), "embed_refusal", None)


def client_for(spec: ProviderSpec) -> ProviderClient:
    """The client for `spec` on the running event loop, made on first use.

    Raises `routing.errors.ProviderKeyMissing` (from the factory) when the key variable is
    unset; nothing is cached then, so setting the variable later works without a restart."""
    loop = asyncio.get_running_loop()
    per_loop = _clients.get(loop)
    if per_loop is None:
        per_loop = _clients[loop] = {}
        _close_at_loop_end(loop)
    entry = per_loop.get(spec)
    if entry is not None:
        options, client = entry
        if options is spec.options or options == spec.options:
            return client
        # The provider was edited: retire the old client (its pool closes in the background).
        _close_later(loop, client)
    client = factory_for(spec.kind)(spec)
    per_loop[spec] = (spec.options, client)
    return client


def _close_later(loop: asyncio.AbstractEventLoop, client: Any) -> None:
    async def close() -> None:
        try:
            await client.aclose()
        except Exception:
            logger.warning("Closing a retired provider client failed", exc_info=True)

    task = loop.create_task(close())
    _background.add(task)
    task.add_done_callback(_background.discard)


_background: set[asyncio.Task] = set()

# loop → a started async generator whose `finally` closes that loop's clients. Loops run by
# asyncio.run (and asgiref's async_to_sync, uvicorn) close every live async generator in
# `shutdown_asyncgens()` before they end, so clients made on a short-lived loop are closed
# even when the code that ran it never called `aclose_clients()` (an unclosed aiohttp
# session would log an error when collected, and keep its sockets until then).
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
    weakref.WeakKeyDictionary()
)


async def _closer() -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await aclose_clients()


def _close_at_loop_end(loop: asyncio.AbstractEventLoop) -> None:
    if loop in _closers:
        return
    closer = _closer()
    step = closer.__anext__()  # registers it with the running loop's async-generator hooks
    try:
        step.send(None)  # runs to the `yield` at once: nothing in front of it awaits
    except StopIteration:
        _closers[loop] = closer
    else:  # pragma: no cover - cannot happen (no await before the yield)
        step.close()


async def aclose_clients() -> None:
    """Close every client made on the running loop (call before the loop ends, e.g. in a
    script or a sync wrapper that owns its loop)."""
    per_loop = _clients.pop(asyncio.get_running_loop(), {})
    for _, client in per_loop.values():
        try:
            await client.aclose()
        except Exception:
            logger.warning("Closing a provider client failed", exc_info=True)


def forget_clients() -> None:
    """Drop every cached client without closing it (tests; after a fork)."""
    _clients.clear()
