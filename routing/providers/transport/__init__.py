"""The one chokepoint every provider call passes (see `routing.providers.base`).

- A deadline always: `request.timeout_s` bounds the whole call through `asyncio.timeout`
  (a stream's reads through one `StreamDeadline`); the clients also pass it to the SDK as
  its own timeout.
- Latency and time to first token are measured here, for successes and failures alike.
- Every exception becomes a `routing.errors.ProviderError` subclass (see `map_exception`);
  `ProviderKeyMissing` (an OrchestratorError) passes through untouched. One raised before any
  byte reached the provider is request-invalid and `local` (no fault of the provider's).
- Error messages are cleared of provider secrets here, once (`routing.providers.redaction`).

Fault injection for drills is not in this path: the engine wraps it (`routing.engine.faults`).

Kept lean on purpose: no client construction (clients are cached per loop in the registry),
no database, no logging on success.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from time import perf_counter

from routing.errors import (
    ModelPermanentError,
    OrchestratorError,
    ProviderError,
)
from routing.providers.base import (
    Completion,
    EmbeddingRequest,
    Embeddings,
    ProviderRequest,
    ProviderSpec,
    StreamEnd,
    StreamItem,
    ToolCallDelta,
)
from routing.providers.redaction import secrets_redact
from routing.providers.registry import client_for
from routing.providers.transport.deadline import StreamDeadline
from routing.providers.transport.mapping import map_exception

__all__ = ["map_exception", "transport_complete", "transport_embed", "transport_stream"]

logger = logging.getLogger(__name__)


async def transport_complete(spec: ProviderSpec, request: ProviderRequest, *, model_name: str) -> Completion:
    """One non-streamed completion. Sets `Completion.latency_ms`; raises ProviderError (with
    `.latency_ms`) on failure."""
    start = perf_counter()
    try:
        client = client_for(spec)
        async with asyncio.timeout(request.timeout_s):
            completion = await client.complete(request)
    except OrchestratorError:
        raise
    except Exception as exc:
        error, leaked = _failure(exc, spec, timeout_s=request.timeout_s)
        error.latency_ms = (perf_counter() - start) * 1000.0
        if error is exc:
            raise
        if leaked:
            raise error from None  # the SDK's exception repeats a secret: not chained to ours
        raise error from exc
    completion.latency_ms = (perf_counter() - start) * 1000.0
    return completion


async def transport_embed(spec: ProviderSpec, request: EmbeddingRequest, *, model_name: str) -> Embeddings:
    """One embeddings call (its batches split by the client). Sets `Embeddings.latency_ms`;
    raises ProviderError (with `.latency_ms`) on failure; a kind whose client cannot embed is
    model-permanent (the engine moves on)."""
    start = perf_counter()
    try:
        client = client_for(spec)
        embed = getattr(client, "embed", None)
        if embed is None:
            raise ModelPermanentError(f"Provider kind {spec.kind} does not serve embeddings.")
        async with asyncio.timeout(request.timeout_s):
            embeddings: Embeddings = await embed(request)
    except OrchestratorError:
        raise
    except Exception as exc:
        error, leaked = _failure(exc, spec, timeout_s=request.timeout_s)
        error.latency_ms = (perf_counter() - start) * 1000.0
        if error is exc:
            raise
        if leaked:
            raise error from None  # the SDK's exception repeats a secret: not chained to ours
        raise error from exc
    embeddings.latency_ms = (perf_counter() - start) * 1000.0
    return embeddings


async def transport_stream(
    spec: ProviderSpec, request: ProviderRequest, *, model_name: str
) -> AsyncGenerator[StreamItem, None]:
    """Text deltas and tool-call pieces (ToolCallDelta, passed through untouched), then one
    StreamEnd with `latency_ms` and `ttft_ms` (the time to the first text or tool-call piece).

    Raises ProviderError mid-way with `.latency_ms`, `.partial_text` and
    `.output_tokens_so_far`. Closing this generator early (`aclose()`, or cancelling the task
    iterating it) closes the client's stream, which closes the upstream HTTP response."""
    start = perf_counter()
    # The deadline bounds the reads, never what the consumer awaits between chunks.
    deadline = StreamDeadline(asyncio.get_running_loop().time() + request.timeout_s)
    ttft_ms: float | None = None
    parts: list[str] = []
    upstream: AsyncIterator[StreamItem] | None = None
    end: StreamEnd | None = None
    try:
        try:
            upstream = client_for(spec).stream(request)
            while True:
                try:
                    item = await deadline.next(upstream)
                except StopAsyncIteration:
                    break
                if isinstance(item, str):
                    if not item:
                        continue
                    if ttft_ms is None:
                        ttft_ms = (perf_counter() - start) * 1000.0
                    parts.append(item)
                    yield item
                elif isinstance(item, ToolCallDelta):
                    if ttft_ms is None:
                        ttft_ms = (perf_counter() - start) * 1000.0
                    yield item
                else:
                    end = item
        except OrchestratorError:
            raise
        except Exception as exc:
            error, leaked = _failure(exc, spec, timeout_s=request.timeout_s)
            error.latency_ms = (perf_counter() - start) * 1000.0
            if parts:
                error.partial_text = "".join(parts)
                error.output_tokens_so_far = max(error.output_tokens_so_far, len(parts))
            if error is exc:
                raise
            if leaked:
                raise error from None  # the SDK's exception repeats a secret: not chained to ours
            raise error from exc
    finally:
        deadline.cancel()
        if upstream is not None:
            aclose = getattr(upstream, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:  # closing must not mask the outcome (cancellation still propagates)
                    logger.warning("Closing a provider stream failed", exc_info=True)
    if end is None:
        end = StreamEnd()
    if not end.usage.output_tokens and parts:
        end.usage.output_tokens = len(parts)
    end.latency_ms = (perf_counter() - start) * 1000.0
    end.ttft_ms = ttft_ms
    yield end


# -- Error mapping ---------------------------------------------------------------------------


def _failure(exc: BaseException, spec: ProviderSpec, *, timeout_s: float) -> tuple[ProviderError, bool]:
    """Our error for `exc`, its message cleared of provider secrets (the one place they are
    removed before anything is returned, stored, logged or spooled); and whether `exc` itself
    repeated a secret (then it must not travel chained to ours)."""
    env_names = (spec.api_key_env,) if spec.api_key_env else ()
    error = map_exception(exc, timeout_s=timeout_s, env_names=env_names)
    message = secrets_redact(error.message, env_names=env_names)
    if message != error.message:
        error.message = message
        error.args = (message,)
    original = str(exc)
    return error, error is not exc and secrets_redact(original, env_names=env_names) != original
