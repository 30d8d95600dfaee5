"""The one small interface every provider kind implements.

A provider package (`routing/providers/<kind>/`) exposes `make_client(provider: ProviderSpec)
-> ProviderClient`. Clients raise only `routing.errors.ProviderError` subclasses; the SDK's
own exceptions are mapped in `routing.providers.transport`, the single chokepoint every call
passes (timeouts, latency and time-to-first-token measurement, error mapping, fault
injection for drills).

The engine never calls a client directly: it calls the chokepoint in
`routing/providers/transport.py`:

    async def transport_complete(spec: ProviderSpec, request: ProviderRequest, *, model_name: str) -> Completion
        # Completion.latency_ms set; raises ProviderError (with .latency_ms set) on failure.
    def transport_stream(spec: ProviderSpec, request: ProviderRequest, *, model_name: str)
        -> AsyncIterator[str | StreamEnd]
        # text deltas, then one StreamEnd with latency_ms and ttft_ms; raises ProviderError mid-way
        # (with .latency_ms, and .partial_text / .output_tokens_so_far when text had been sent).
        # Closing the iterator early (aclose / cancellation) cancels the upstream request.

CONTRACT: the names and fields here are shared by the provider and engine work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from routing.engine.types import Usage
from routing.sampling import NO_SAMPLING, SamplingOptions

__all__ = [
    "NO_SAMPLING",
    "Completion",
    "ProviderClient",
    "ProviderRequest",
    "ProviderSpec",
    "SamplingOptions",
    "StreamEnd",
]


@dataclass(frozen=True)
class ProviderSpec:
    """What a client needs to know about a routing.Provider row (no secret: the key is read
    from the environment variable `api_key_env` when the client is made)."""

    name: str
    kind: str
    base_url: str = ""
    api_version: str = ""
    api_key_env: str = ""
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass
class ProviderRequest:
    model_id: str  # the provider's id (Azure: the deployment)
    messages: list[dict[str, Any]]  # OpenAI-style [{"role": "system"|"user"|"assistant", "content": str}]
    temperature: float | None = None
    max_tokens: int | None = None
    timeout_s: float = 60.0
    # top_p, stop, seed, penalties, response_format, user: each kind sends what it can honour.
    sampling: SamplingOptions = NO_SAMPLING


@dataclass
class Completion:
    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    simulated: bool = False
    latency_ms: float = 0.0  # set by the transport chokepoint


@dataclass
class StreamEnd:
    """Last item of a stream: final usage and finish reason."""

    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    simulated: bool = False
    latency_ms: float = 0.0  # set by the transport chokepoint
    ttft_ms: float | None = None  # set by the transport chokepoint


class ProviderClient(Protocol):
    async def complete(self, request: ProviderRequest) -> Completion: ...

    def stream(self, request: ProviderRequest) -> AsyncIterator[str | StreamEnd]:
        """Yield text deltas (str), then exactly one StreamEnd."""
        ...

    async def aclose(self) -> None: ...
