"""The one small interface every provider kind implements.

A provider package (`routing/providers/<kind>/`) exposes `make_client(provider: ProviderSpec)
-> ProviderClient`. Clients raise only `routing.errors.ProviderError` subclasses; the SDK's
own exceptions are mapped in `routing.providers.transport`, the single chokepoint every call
passes (timeouts, latency and time-to-first-token measurement, error mapping, fault
injection for drills).

CONTRACT: the names and fields here are shared by the provider and engine work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from routing.engine.types import Usage


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


@dataclass
class Completion:
    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    simulated: bool = False


@dataclass
class StreamEnd:
    """Last item of a stream: final usage and finish reason."""

    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    simulated: bool = False


class ProviderClient(Protocol):
    async def complete(self, request: ProviderRequest) -> Completion: ...

    def stream(self, request: ProviderRequest) -> AsyncIterator[str | StreamEnd]:
        """Yield text deltas (str), then exactly one StreamEnd."""
        ...

    async def aclose(self) -> None: ...
