"""Fault injection for drills and tests: make chosen models fail without calling them.

    from routing.engine.faults import FaultSpec, inject_faults

    with inject_faults({"gpt-4o": FaultSpec("rate_limit"), "claude": FaultSpec("timeout", rate=0.5)}):
        await orchestrator.acomplete(...)

The mapping lives in a ContextVar, so it applies to every asyncio task created inside the
block (tasks copy the context when they are created) and to nothing outside it. The engine
makes its provider calls through `faulted_complete` / `faulted_stream`, which wrap the
transport chokepoint (`routing.providers.transport`): a faulted call never reaches it, and the
chokepoint itself knows nothing of drills.

Kinds:
- `rate_limit`: a TransientError with HTTP 429 (and `retry_after_s` when the spec sets one).
- `server_error`: a TransientError with HTTP 500.
- `timeout`: behaves like the request's timeout firing (TransientError, `timeout=True`), but
  the actual wait is capped at `FaultSpec.max_wait_s` (default 0.25 s) so drills stay fast.
- `stream_cut`: a stream yields `after_tokens` placeholder tokens (a sentence saying it is a
  drill) then fails with a TransientError carrying the partial text; a non-streamed call
  fails as a connection dropped mid-response.

Whether a call is faulted is decided by `rate`: 1.0 always, 0.0 never, in between by a
random draw seeded from a counter that starts at zero in each `inject_faults` block, so the
same block run twice faults the same calls.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from time import perf_counter
from typing import Literal

from routing.errors import ProviderError, TransientError
from routing.providers.base import (
    Completion,
    EmbeddingRequest,
    Embeddings,
    ProviderRequest,
    ProviderSpec,
    StreamEnd,
    StreamItem,
)
from routing.providers.transport import transport_complete, transport_embed, transport_stream

FaultKind = Literal["rate_limit", "server_error", "timeout", "stream_cut"]
FAULT_KINDS: tuple[FaultKind, ...] = ("rate_limit", "server_error", "timeout", "stream_cut")

DEFAULT_MAX_WAIT_S = 0.25


@dataclass(frozen=True)
class FaultSpec:
    kind: FaultKind
    rate: float = 1.0
    after_tokens: int = 3
    retry_after_s: float | None = None  # rate_limit: the Retry-After the fake 429 carries
    max_wait_s: float = DEFAULT_MAX_WAIT_S  # timeout: cap on the real wait (seconds)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {self.kind!r}; use one of {', '.join(FAULT_KINDS)}.")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"Fault rate must be between 0 and 1, not {self.rate}.")
        if self.after_tokens < 0:
            raise ValueError("after_tokens cannot be negative.")


@dataclass
class _ActiveFaults:
    specs: dict[str, FaultSpec]
    counter: Iterator[int] = field(default_factory=itertools.count)


_active: ContextVar[_ActiveFaults | None] = ContextVar("orchestrator_faults", default=None)


@contextmanager
def inject_faults(mapping: Mapping[str, FaultSpec]) -> Iterator[None]:
    """Make calls to the named models (ModelConfig names) fail as the specs say, inside the block.

    Nested blocks replace the outer mapping entirely for their duration."""
    specs = dict(mapping)
    for name, spec in specs.items():
        if not isinstance(spec, FaultSpec):
            raise TypeError(f"Fault for {name!r} must be a FaultSpec, not {type(spec).__name__}.")
    token = _active.set(_ActiveFaults(specs=specs))
    try:
        yield
    finally:
        _active.reset(token)


def fault_for(model_name: str) -> FaultSpec | None:
    """The fault to apply to this call of `model_name`, or None (the usual, fast case)."""
    active = _active.get()
    if active is None:
        return None
    spec = active.specs.get(model_name)
    if spec is None or spec.rate <= 0.0:
        return None
    draw = next(active.counter)
    if spec.rate >= 1.0:
        return spec
    return spec if random.Random(draw).random() < spec.rate else None


def faults_active() -> dict[str, FaultSpec]:
    """The faults in force in the current context (a copy), for display."""
    active = _active.get()
    return dict(active.specs) if active is not None else {}


# -- The engine's provider calls: the transport, or the fault planned instead -----------------


async def faulted_complete(spec: ProviderSpec, request: ProviderRequest, *, model_name: str) -> Completion:
    """`transport_complete`, unless a fault is planned for this call of `model_name`: then
    that fault's error (with `latency_ms`), and the provider is not called."""
    fault = fault_for(model_name)
    if fault is None:
        return await transport_complete(spec, request, model_name=model_name)
    start = perf_counter()
    try:
        if fault.kind == "timeout":
            raise await _fault_timeout(fault, request)
        raise _fault_error(fault)
    except ProviderError as error:
        error.latency_ms = (perf_counter() - start) * 1000.0
        raise


async def faulted_embed(spec: ProviderSpec, request: EmbeddingRequest, *, model_name: str) -> Embeddings:
    """`transport_embed`, unless a fault is planned for this call of `model_name` (as for
    `faulted_complete`; a stream cut fails as a connection dropped mid-response)."""
    fault = fault_for(model_name)
    if fault is None:
        return await transport_embed(spec, request, model_name=model_name)
    start = perf_counter()
    try:
        if fault.kind == "timeout":
            raise await _fault_timeout(fault, request)
        raise _fault_error(fault)
    except ProviderError as error:
        error.latency_ms = (perf_counter() - start) * 1000.0
        raise


def faulted_stream(
    spec: ProviderSpec, request: ProviderRequest, *, model_name: str
) -> AsyncIterator[StreamItem]:
    """`transport_stream`, unless a fault is planned for this call of `model_name`: then a
    stream that fails as the fault says (after its placeholder tokens for a stream cut, the
    error carrying them as `partial_text`), and the provider is not called."""
    fault = fault_for(model_name)
    if fault is None:
        return transport_stream(spec, request, model_name=model_name)
    return _fault_stream(fault, request)


_DRILL_WORDS = [
    "This",
    "answer",
    "was",
    "cut",
    "off",
    "by",
    "a",
    "stream",
    "fault",
    "injected",
    "for",
    "a",
    "drill",
]


def _fault_error(fault: FaultSpec) -> ProviderError:
    if fault.kind == "rate_limit":
        return TransientError(
            "HTTP 429: rate limited (injected fault)", http_status=429, retry_after_s=fault.retry_after_s
        )
    if fault.kind == "server_error":
        return TransientError("HTTP 500: server error (injected fault)", http_status=500)
    return TransientError("Connection closed mid-response (injected stream cut)")


async def _fault_timeout(fault: FaultSpec, request: ProviderRequest | EmbeddingRequest) -> ProviderError:
    await asyncio.sleep(min(request.timeout_s, fault.max_wait_s))
    return TransientError(
        f"No answer within the {request.timeout_s:g} s timeout (injected fault).", timeout=True
    )


async def _fault_stream(fault: FaultSpec, request: ProviderRequest) -> AsyncGenerator[str | StreamEnd, None]:
    start = perf_counter()
    parts: list[str] = []
    try:
        if fault.kind == "timeout":
            raise await _fault_timeout(fault, request)
        if fault.kind == "stream_cut":
            for i in range(fault.after_tokens):
                word = _DRILL_WORDS[i % len(_DRILL_WORDS)]
                parts.append(word if i == 0 else " " + word)
                yield parts[-1]
        raise _fault_error(fault)
    except ProviderError as error:
        error.latency_ms = (perf_counter() - start) * 1000.0
        error.partial_text = "".join(parts)
        error.output_tokens_so_far = len(parts)
        raise
