"""Embedding batches larger than a provider takes in one request: split, sent, joined in order.

A kind's client calls `batches_embed(request, batch_max=..., send=...)` with its own one-request
`send`: up to `BATCH_CONCURRENCY` parts are in flight at once, the vectors come back in the
request's order and their usage is summed. One part failing fails the whole call (the others
are cancelled), so the engine retries or falls over the batch as one attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

from routing.providers.base import EmbeddingRequest, Embeddings, Usage

__all__ = ["BATCH_CONCURRENCY", "batch_max_for", "batches_embed"]

BATCH_CONCURRENCY = 4


def batch_max_for(option: int | None, default: int) -> int:
    """The provider's `embed_batch_max` option, else the kind's own limit."""
    return option if option else default


async def batches_embed(
    request: EmbeddingRequest,
    *,
    batch_max: int,
    send: Callable[[EmbeddingRequest], Awaitable[Embeddings]],
) -> Embeddings:
    inputs = request.inputs
    if len(inputs) <= batch_max:
        return await send(request)
    parts = [replace(request, inputs=inputs[i : i + batch_max]) for i in range(0, len(inputs), batch_max)]
    gate = asyncio.Semaphore(BATCH_CONCURRENCY)

    async def one(part: EmbeddingRequest) -> Embeddings:
        async with gate:
            return await send(part)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(part)) for part in parts]
    except BaseExceptionGroup as failed:
        # The first part's failure, as one call's would be (the chokepoint maps it).
        raise failed.exceptions[0]  # noqa: B904
    results = [task.result() for task in tasks]
    vectors = [vector for result in results for vector in result.vectors]
    usage = Usage(
        input_tokens=sum(r.usage.input_tokens for r in results),
        cached_tokens=sum(r.usage.cached_tokens for r in results),
    )
    return Embeddings(vectors=vectors, usage=usage, simulated=all(r.simulated for r in results))
