"""Embeddings through the engine: validate the input, plan the embedding models to try, and drive
the one attempt loop (`routing.engine.attempts`) over them, as the chat paths do: the same skips,
retries, backoff, breaker and one CallRecord per attempt (input tokens, cost, the endpoint).

What differs from chat is only what a step may be and what an answer is:
- only models with the `embedding` capability serve (a chat model named here is a 400, a chat
  model in a chain is passed over as "capability"), and chat never uses them
  (`routing.engine.selection`);
- every answer of a plan has one dimension: the request's `dimensions`, else the first model's
  configured `embedding_dimensions`; a model of another size is passed over ("dimension"), and an
  answer of the wrong size is a model-permanent failure (the next model is tried);
- a kind that cannot take the input (Gemini: token arrays) is passed over as "unsupported",
  naming `input` when nothing is left;
- a batch larger than a provider takes is split by its client and joined in order (one attempt).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from routing.engine import planning, routes
from routing.engine.attempts import AttemptLoop, Skip
from routing.engine.config import ModelSnap, Snapshot
from routing.engine.faults import faulted_embed
from routing.engine.trace import Messages, Step, Trace
from routing.engine.types import AttemptInfo, Result, SkipInfo, Usage
from routing.errors import (
    AllAttemptsFailed,
    InvalidRequest,
    ModelPermanentError,
    NoCandidate,
    ProviderError,
    ProviderKeyMissing,
)
from routing.models import EMBEDDING
from routing.providers.base import Completion, EmbeddingRequest
from routing.providers.registry import embed_refusal_for

__all__ = [
    "EMBED_KWARGS",
    "EmbeddingResult",
    "MAX_INPUTS",
    "embed_dimensions_check",
    "embed_inputs_check",
    "embed_plan",
    "embed_run",
    "embed_trace",
    "embed_user_check",
    "input_view",
]

MAX_INPUTS = 2048  # inputs per request, as OpenAI's API takes (providers with less are split)
MAX_DIMENSIONS = 65_536
VIEW_ITEMS = 20  # inputs listed in a record's request_text
VIEW_CHARS = 300  # characters of each listed input

# The keyword arguments an embeddings call takes besides its own (no sampling: nothing is generated).
EMBED_KWARGS = frozenset({"source", "api_key_id", "trace_id", "role", "created_at", "endpoint"})

Inputs = list[str | list[int]]


@dataclass
class EmbeddingResult:
    """The vectors (one per input, in order) and what it took, like a chat `Result`."""

    vectors: list[list[float]]
    model: str  # the ModelConfig name that answered
    trace_id: str
    dimensions: int
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal | None = None  # None: price unknown (flagged), never a silent 0
    latency_ms: float = 0.0
    attempts: list[AttemptInfo] = field(default_factory=list)
    skipped: list[SkipInfo] = field(default_factory=list)
    simulated: bool = False


# -- Input --------------------------------------------------------------------------------


def _token_array(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def embed_inputs_check(value: Any) -> Inputs:
    """OpenAI's `input`: a string, a list of strings, a token array (list of ints) or a list of
    token arrays → the list of inputs. InvalidRequest (param "input") names what is wrong."""
    if isinstance(value, str):
        items: list[Any] = [value]
    elif _token_array(value) and value:
        items = [value]
    elif isinstance(value, list):
        items = value
    else:
        raise InvalidRequest(
            "input must be a string, a list of strings, or token arrays (lists of integers).",
            param="input",
            code="invalid_type",
        )
    if not items:
        raise InvalidRequest("input is empty: give at least one text to embed.", param="input")
    if len(items) > MAX_INPUTS:
        raise InvalidRequest(f"input may hold at most {MAX_INPUTS} items, not {len(items)}.", param="input")
    kinds = set()
    for i, item in enumerate(items):
        if isinstance(item, str):
            kinds.add("text")
            if not item:
                raise InvalidRequest(f"input[{i}] is an empty string: nothing to embed.", param=f"input[{i}]")
        elif _token_array(item):
            kinds.add("tokens")
            if not item:
                raise InvalidRequest(f"input[{i}] is an empty token array.", param=f"input[{i}]")
            if any(t < 0 for t in item):
                raise InvalidRequest(f"input[{i}] holds a negative token id.", param=f"input[{i}]")
        else:
            raise InvalidRequest(
                f"input[{i}] must be a string or a token array (a list of integers).",
                param=f"input[{i}]",
                code="invalid_type",
            )
    if len(kinds) > 1:
        raise InvalidRequest("input mixes strings and token arrays: send one or the other.", param="input")
    return items


def embed_dimensions_check(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMENSIONS:
        raise InvalidRequest(
            f"dimensions must be an integer from 1 to {MAX_DIMENSIONS}, not {value!r}.",
            param="dimensions",
            code="invalid_type" if not isinstance(value, int) or isinstance(value, bool) else "out_of_range",
        )
    return value


def embed_user_check(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 256:
        raise InvalidRequest("user must be a string of at most 256 characters.", param="user")
    return value


def input_tokens_estimate(item: str | list[int]) -> int:
    return len(item) if isinstance(item, list) else (len(item) + 3) // 4


def input_view(inputs: Inputs) -> str:
    """A short, readable view of the inputs for a record's request_text (never the whole batch)."""

    def one(item: str | list[int]) -> str:
        if isinstance(item, list):
            return f"({len(item)} tokens)"
        return item if len(item) <= VIEW_CHARS else item[: VIEW_CHARS - 1] + "…"

    if len(inputs) == 1:
        item = inputs[0]
        return one(item) if isinstance(item, list) else (item if len(item) <= 2000 else item[:1999] + "…")
    lines = [f"{len(inputs)} inputs:"]
    lines += [f"[{i}] {one(item)}" for i, item in enumerate(inputs[:VIEW_ITEMS])]
    if len(inputs) > VIEW_ITEMS:
        lines.append(f"… and {len(inputs) - VIEW_ITEMS} more")
    return "\n".join(lines)


# -- Plan ---------------------------------------------------------------------------------


def _embedding_check(model: ModelSnap) -> None:
    """A model the caller named must be an embedding model: say so plainly."""
    if EMBEDDING not in model.capabilities:
        raise InvalidRequest(
            f"{model.name} is not an embedding model (it lacks the '{EMBEDDING}' capability): "
            "name an embedding model, or a chain of them.",
            param="model",
            code="model_not_embedding",
        )


async def embed_plan(
    snap: Snapshot,
    trace: Trace,
    inputs: Inputs,
    *,
    model: str | None,
    chain: str | None,
    task_type: str | None,
    capabilities: list[str] | None,
    optimize_for: str,
) -> list[Step]:
    """The embedding models to try, in order: the named model (or a route's), else a selection
    by capabilities (`embedding` always among them), then the chain (the route's)."""
    if capabilities is not None and (
        not isinstance(capabilities, list | tuple) or not all(isinstance(c, str) for c in capabilities)
    ):
        raise InvalidRequest("capabilities must be a list of capability slugs.")
    needed = max(input_tokens_estimate(item) for item in inputs)
    wanted = sorted({EMBEDDING, *(capabilities or [])})
    if task_type:
        route = routes.route_get(snap, task_type)
        # Recorded with the route; its prompt and processors are for chat, not applied here.
        trace.route = replace(route, preprocessor="", postprocessor="", prompt=None, variants={})
        model = model or route.model_name
        chain = chain or route.chain_name
        wanted = sorted({EMBEDDING, *route.capabilities})
        optimize_for = route.optimize_for if optimize_for == "cost" else optimize_for
    chained = planning.chain_steps(snap, chain) if chain else []
    steps: list[Step] = []
    if model:
        explicit = planning.model_get(snap, model)
        _embedding_check(explicit)
        planning.explicit_model_check(explicit, needed, alone=not chained, embedding=True)
        steps.append(Step(model=explicit))
    elif not chained or task_type:
        try:
            ranked = await planning.selection(
                snap, capabilities=wanted, optimize_for=optimize_for, needed=needed, out=0
            )
        except (NoCandidate, ProviderKeyMissing, AllAttemptsFailed):
            if not chained:
                raise
            ranked = []
        steps.extend(Step(model=m) for m in ranked[: 1 if chained else planning.SELECTION_FALLBACKS])
    steps.extend(chained)
    return planning.roles_assign(planning.context_filter(steps, needed))


def plan_dimensions(steps: list[Step], asked: int | None) -> int | None:
    """The size every answer of the plan has: the request's, else the first embedding model's."""
    if asked is not None:
        return asked
    for step in steps:
        if EMBEDDING in step.model.capabilities and step.model.embedding_dimensions:
            return step.model.embedding_dimensions
    return None


def embed_skip(
    trace: Trace, request: EmbeddingRequest, expected: int | None
) -> Callable[[Step], Skip | None]:
    """The embeddings path's reasons to pass a step over (the attempt loop's `path_skip`)."""

    def skip(step: Step) -> Skip | None:
        model = step.model
        if EMBEDDING not in model.capabilities:
            return "capability", "not an embedding model"
        dims = model.embedding_dimensions
        if request.dimensions is None and expected is not None and dims is not None and dims != expected:
            return "dimension", f"{dims} dimensions, not {expected}"
        refusal = embed_refusal_for(model.provider.kind)
        found = refusal(request) if refusal is not None else None
        if found is not None:
            trace.refused[model.name] = found[0]
            return "unsupported", found[1]
        return None

    return skip


# -- Run ----------------------------------------------------------------------------------


async def embed_run(
    trace: Trace, steps: list[Step], inputs: Inputs, *, dimensions: int | None, user: str | None
) -> EmbeddingResult:
    """Try the steps in order until one answers vectors. Raises OrchestratorError subclasses only."""
    view: Messages = [{"role": "input", "content": input_view(inputs)}]
    base = EmbeddingRequest(model_id="", inputs=inputs, dimensions=dimensions, user=user)
    expected = plan_dimensions(steps, dimensions)
    loop = AttemptLoop(trace, steps, view, path_skip=embed_skip(trace, base, expected))
    while (attempt := await loop.next()) is not None:
        model = attempt.step.model
        request = EmbeddingRequest(
            model_id=model.model_id,
            inputs=inputs,
            dimensions=dimensions,
            user=user,
            timeout_s=attempt.request.timeout_s,
            model_dimensions=model.embedding_dimensions,
        )
        t0 = time.perf_counter()
        try:
            answer = await faulted_embed(model.provider.spec, request, model_name=model.name)
        except ProviderKeyMissing as exc:
            loop.key_missing(attempt, exc)
            continue
        except ProviderError as exc:
            outcome = loop.failed(attempt, exc)
            if outcome.exception is not None:
                raise outcome.exception from exc
            continue
        except asyncio.CancelledError:
            loop.cancelled(
                attempt,
                message="cancelled before the vectors arrived",
                latency_ms=(time.perf_counter() - t0) * 1000.0,
            )
            raise
        sizes = {len(v) for v in answer.vectors}
        size = sizes.pop() if len(sizes) == 1 else None
        want = expected or model.embedding_dimensions
        if size is None or (want is not None and size != want):
            got = "vectors of mixed sizes" if size is None else f"{size}-dimensional vectors"
            error = ModelPermanentError(f"{model.name} answered {got}, not {want or 'one size'}.")
            error.latency_ms = answer.latency_ms
            loop.failed(attempt, error, usage=answer.usage, response_text=f"{len(answer.vectors)} vectors")
            continue
        summary = f"{len(answer.vectors)} vector{'s' if len(answer.vectors) != 1 else ''} × {size} dimensions"
        result = loop.succeeded(
            attempt,
            Completion(
                text=summary, usage=answer.usage, simulated=answer.simulated, latency_ms=answer.latency_ms
            ),
        )
        if not isinstance(result, Result):  # an Outcome: only a post-processor makes one
            continue
        return EmbeddingResult(
            vectors=answer.vectors,
            model=model.name,
            trace_id=trace.trace_id,
            dimensions=size,
            usage=answer.usage,
            cost_usd=result.cost_usd,
            latency_ms=answer.latency_ms,
            attempts=loop.attempts,
            skipped=result.skipped,
            simulated=answer.simulated,
        )
    raise loop.exhausted()


def embed_trace(kwargs: dict[str, Any]) -> Trace:
    """The call's Trace (the common keyword arguments that make sense for embeddings)."""
    unknown = sorted(set(kwargs) - EMBED_KWARGS)
    if unknown:
        raise TypeError(f"embed() got unexpected keyword argument(s): {', '.join(unknown)}")
    trace = planning.trace_make(kwargs, fn="embed")
    trace.system = ""  # no system prompt: a route's prompt is for chat
    return trace
