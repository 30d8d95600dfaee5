"""The one small interface every provider kind implements.

A provider package (`routing/providers/<kind>/`) exposes `make_client(provider: ProviderSpec)
-> ProviderClient`. Clients raise only `routing.errors.ProviderError` subclasses; the SDK's
own exceptions are mapped in `routing.providers.transport`, the single chokepoint every call
passes (timeouts, latency and time-to-first-token measurement, error mapping, fault
injection for drills).

The engine never calls a client directly: it calls the chokepoint in
`routing/providers/transport/`:

    async def transport_complete(spec: ProviderSpec, request: ProviderRequest, *, model_name: str) -> Completion
        # Completion.latency_ms set; raises ProviderError (with .latency_ms set) on failure.
    def transport_stream(spec: ProviderSpec, request: ProviderRequest, *, model_name: str)
        -> AsyncIterator[StreamItem]
        # text deltas and ToolCallDelta pieces (passed through as the client yields them), then
        # one StreamEnd with latency_ms and ttft_ms (the first text or tool-call piece); raises
        # ProviderError mid-way (with .latency_ms, and .partial_text / .output_tokens_so_far
        # when text had been sent).
        # Closing the iterator early (aclose / cancellation) cancels the upstream request.

    async def transport_embed(spec: ProviderSpec, request: EmbeddingRequest, *, model_name: str) -> Embeddings
        # Embeddings.latency_ms set; raises ProviderError (with .latency_ms set) on failure.
        # Kinds that embed give their client an `embed` method (EmbeddingClient).

CONTRACT: the names and fields here are shared by the provider and engine work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from routing.messages import NO_CHAT_OPTIONS, ChatOptions
from routing.sampling import NO_SAMPLING, SamplingOptions

__all__ = [
    "NO_CHAT_OPTIONS",
    "NO_SAMPLING",
    "ChatOptions",
    "Choice",
    "Completion",
    "EmbeddingClient",
    "EmbeddingRequest",
    "Embeddings",
    "ProviderClient",
    "ProviderRequest",
    "ProviderSpec",
    "SamplingOptions",
    "StreamEnd",
    "StreamItem",
    "ToolCallDelta",
    "Usage",
    "tool_calls_assemble",
]


@dataclass
class Usage:
    """Tokens a call used, as the provider counted them (the engine prices and records them)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # of input_tokens, read from the provider's prompt cache
    reasoning_tokens: int = 0  # of output_tokens, spent thinking (OpenAI o-series, Gemini)


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
    messages: list[
        dict[str, Any]
    ]  # canonical (routing.messages): OpenAI's chat shape, parts and tool turns included
    temperature: float | None = None
    max_tokens: int | None = None
    timeout_s: float = 60.0
    # top_p, stop, seed, penalties, response_format, user: each kind sends what it can honour.
    sampling: SamplingOptions = NO_SAMPLING
    # tools, tool_choice, parallel_tool_calls, n, logprobs, reasoning_effort (routing.messages).
    chat: ChatOptions = NO_CHAT_OPTIONS


@dataclass
class Choice:
    """One of several answers (`n > 1`): choices 1… of a Completion (choice 0 is the Completion)."""

    text: str
    finish_reason: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: dict[str, Any] | None = None


@dataclass
class Completion:
    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    simulated: bool = False
    latency_ms: float = 0.0  # set by the transport chokepoint
    # OpenAI's shape: [{"id", "type": "function", "function": {"name", "arguments": JSON text}}]
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: dict[str, Any] | None = None  # OpenAI's choice.logprobs, where the provider returns them
    more_choices: list[Choice] = field(default_factory=list)  # n > 1: choices 1…


@dataclass
class ToolCallDelta:
    """A streamed piece of a tool call, as OpenAI streams it: the first piece of call `index`
    carries its id and name, later ones argument fragments (JSON text, concatenated in order)."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


def tool_calls_assemble(deltas: list[ToolCallDelta]) -> list[dict[str, Any]]:
    """Streamed pieces → the calls in OpenAI's shape, in the order their indexes first came:
    the first id and the first name of each call, its argument fragments joined."""
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        call = calls.get(delta.index)
        if call is None:
            call = calls[delta.index] = {
                "id": "",
                "type": "function",
                "function": {"name": "", "arguments": ""},
            }
        if delta.id and not call["id"]:
            call["id"] = delta.id
        if delta.name and not call["function"]["name"]:
            call["function"]["name"] = delta.name
        if delta.arguments:
            call["function"]["arguments"] += delta.arguments
    return list(calls.values())


@dataclass
class StreamEnd:
    """Last item of a stream: final usage and finish reason."""

    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    simulated: bool = False
    latency_ms: float = 0.0  # set by the transport chokepoint
    ttft_ms: float | None = None  # set by the transport chokepoint
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # the streamed calls, assembled


# What a client's stream yields: text deltas, tool-call pieces, then one StreamEnd.
StreamItem = str | ToolCallDelta | StreamEnd


class ProviderClient(Protocol):
    async def complete(self, request: ProviderRequest) -> Completion: ...

    def stream(self, request: ProviderRequest) -> AsyncIterator[StreamItem]:
        """Yield text deltas (str) and tool-call pieces (ToolCallDelta) in the order the
        provider sent them, then exactly one StreamEnd (its `tool_calls` assembled)."""
        ...

    async def aclose(self) -> None: ...


# -- Embeddings ---------------------------------------------------------------------------


@dataclass
class EmbeddingRequest:
    """One embeddings call: every input gets one vector, in order."""

    model_id: str
    inputs: list[str | list[int]]  # texts, or token arrays (list of token ids) where the kind takes them
    dimensions: int | None = None  # the caller's `dimensions` (sent only when asked)
    user: str | None = None
    timeout_s: float = 60.0
    # The dimension the operator configured for the model (ModelConfig.embedding_dimensions):
    # what a kind with no native size of its own (simulated) produces when none is asked.
    model_dimensions: int | None = None


@dataclass
class Embeddings:
    vectors: list[list[float]]  # one per input, in the request's order
    usage: Usage = field(default_factory=Usage)  # input tokens only
    simulated: bool = False
    latency_ms: float = 0.0  # set by the transport chokepoint


class EmbeddingClient(Protocol):
    """What a client of a kind that embeds adds (optional per kind): split batches above the
    provider's limit and join the vectors back in order (`routing.providers.batching`)."""

    async def embed(self, request: EmbeddingRequest) -> Embeddings: ...
