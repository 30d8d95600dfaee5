"""The embeddings entry point: `aembed` (and the sync `embed` in `sync.py`).

from routing import orchestrator
r = orchestrator.embed(["first text", "second"], model="text-embedding-3-small")
r.vectors, r.dimensions, r.model, r.usage.input_tokens, r.cost_usd, r.attempts
"""

from __future__ import annotations

from typing import Any

from routing.engine.config import snapshot_aget
from routing.engine.embed import (
    EmbeddingResult,
    embed_dimensions_check,
    embed_inputs_check,
    embed_plan,
    embed_run,
    embed_trace,
    embed_user_check,
)
from routing.orchestrator.calls import records_inline

__all__ = ["EmbeddingResult", "aembed", "embed_dimensions_check", "embed_inputs_check", "embed_user_check"]


@records_inline
async def aembed(
    input: str | list[str] | list[int] | list[list[int]],
    *,
    model: str | None = None,
    chain: str | None = None,
    task_type: str | None = None,
    capabilities: list[str] | None = None,
    optimize_for: str = "cost",
    dimensions: int | None = None,
    user: str | None = None,
    **kwargs: Any,
) -> EmbeddingResult:
    """Embed `input` (a string, a list of strings, a token array or a list of them): one vector
    per input, in order. From `model`, else the cheapest embedding model (with `capabilities`),
    or a route's (`task_type`); `chain` adds its models as fallbacks (one dimension per chain).
    `dimensions` asks for shorter vectors where the model can; `user` is passed on. Takes the
    common keyword arguments source, api_key_id, trace_id, role, created_at and endpoint."""
    trace = embed_trace(kwargs)
    inputs = embed_inputs_check(input)
    size = embed_dimensions_check(dimensions)
    who = embed_user_check(user)
    snap = await snapshot_aget()
    steps = await embed_plan(
        snap,
        trace,
        inputs,
        model=model,
        chain=chain,
        task_type=task_type,
        capabilities=capabilities,
        optimize_for=optimize_for,
    )
    return await embed_run(trace, steps, inputs, dimensions=size, user=who)
