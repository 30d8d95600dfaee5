"""The Python API: the seed's ModelOrchestrator, TaskRouter, ParallelOrchestrator and
FallbackChain in one place, reading config from the database. Async functions are the
engine; the plain names are sync wrappers for Django views, Celery tasks and scripts.

    from routing import orchestrator
    r = orchestrator.route("code_review", python_code)   # r.text, r.model, r.trace_id, r.cost_usd, r.attempts

Keyword arguments common to every call:
    source       "api" | "playground" | "gateway" | "batch" | "drill" | "simulation" (stored on records)
    api_key_id   gateway.ApiKey id the spend is attributed to
    trace_id     join an existing trace (a new one is made otherwise)
    temperature, max_tokens
    top_p, stop, seed, presence_penalty, frequency_penalty, response_format, user
                 the sampling options, as OpenAI names them (or `sampling=SamplingOptions(...)`,
                 from routing.sampling); every attempt, fallbacks included, sends the same ones
    role         a label stored on the records (e.g. "arena", "cell"); by default each record
                 says primary / fallback / consensus / judge
    system       a system prompt that replaces the route's (playground)
    created_at   backdate the records (simulated traffic)
    processor_options  keyword arguments for the route's processors (e.g. labels=[...])

Errors are `routing.errors.OrchestratorError` subclasses, each with an HTTP status. Bad
input (unknown task type, model or chain, empty messages, a capability no model has, a
missing key, a prompt too long for every candidate) fails before anything is sent or
recorded. The sync wrappers cannot run inside an event loop: await the `a…` twin there.
They write the call records before they return; async callers can `await arecords_flush()`.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync, async_to_sync
from django.conf import settings

from metrics.services import acall_records_flush, call_records_flush
from routing.engine import planning, stats
from routing.engine.breaker import breaker_reset, breaker_scope, breaker_states
from routing.engine.config import snapshot_aget, snapshot_get
from routing.engine.consensus import AGGREGATORS, AnswerGroup, answer_groups, consensus_decide, consensus_run
from routing.engine.execute import plan_run
from routing.engine.faults import FaultSpec, inject_faults
from routing.engine.selection import OPTIMIZE_FOR, candidates_select
from routing.engine.streaming import plan_stream
from routing.engine.trace import Step, trace_id_new
from routing.engine.types import AttemptInfo, ConsensusResult, MemberOutcome, Result, StreamEvent, Usage
from routing.errors import AllAttemptsFailed, InvalidRequest, NoCandidate, NotFound, OrchestratorError
from routing.providers.registry import aclose_clients
from routing.sampling import (
    NO_SAMPLING,
    SAMPLING_FIELDS,
    SEED_RANGE,
    SamplingOptions,
    number_in_range,
    sampling_options,
    type_name,
)

# The public engine API: callers (the gateway, scripts, fault drills: breaker scopes and fault
# injection) import these names from here, never
# from routing.engine.*, so the engine's modules can move without breaking them.
__all__ = [
    "NO_SAMPLING",
    "SAMPLING_FIELDS",
    "SEED_RANGE",
    "AllAttemptsFailed",
    "AnswerGroup",
    "AttemptInfo",
    "ConsensusResult",
    "FaultSpec",
    "InvalidRequest",
    "MemberOutcome",
    "NoCandidate",
    "NotFound",
    "OrchestratorError",
    "Result",
    "SamplingOptions",
    "StreamEvent",
    "Usage",
    "aconsensus",
    "aconsensus_decide",
    "acomplete",
    "aexecute_parallel",
    "aexecute_with_fallback",
    "arecords_flush",
    "aroute",
    "answer_groups",
    "aselect_model",
    "astream",
    "breaker_reset",
    "breaker_scope",
    "breaker_states",
    "complete",
    "consensus",
    "execute_parallel",
    "execute_with_fallback",
    "inject_faults",
    "number_in_range",
    "records_flush",
    "route",
    "sampling_options",
    "select_model",
    "trace_id_new",
    "type_name",
]

Messages = list[dict[str, Any]]
T = TypeVar("T")


def _inline_records() -> bool:
    """RECORD_FLUSH_INTERVAL_S = 0: write records at the end of each call (tests)."""
    return not float(settings.ORCHESTRATOR.get("RECORD_FLUSH_INTERVAL_S", 0.5))


def _records_inline(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        finally:
            if _inline_records():
                await acall_records_flush()

    return wrapper


@_records_inline
async def aroute(task_type: str, content: str, **kwargs: Any) -> Result:
    """Run a task route: pre-processor, prompt (per-model variant first), the route's model
    or a selection, post-processor, and the route's fallback chain on failure."""
    optimize_for = kwargs.pop("optimize_for", None)
    snap = await snapshot_aget()
    route = planning.route_get(snap, task_type)
    trace = planning.trace_make(kwargs, route=route, fn="route")
    text = planning.route_content(route, content, trace.processor_options)
    messages: Messages = [{"role": "user", "content": text}]
    steps = await planning.route_plan(snap, trace, route, messages, optimize_for=optimize_for)
    return await plan_run(trace, steps, messages)


@_records_inline
async def acomplete(
    messages: Messages,
    *,
    model: str | None = None,
    capabilities: list[str] | None = None,
    optimize_for: str = "cost",
    chain: str | None = None,
    **kwargs: Any,
) -> Result:
    """One answer: from `model`, else the best model with `capabilities` for `optimize_for`
    (trying the next-ranked ones on failure); `chain` adds that chain's models as fallbacks."""
    trace = planning.trace_make(kwargs, fn="complete")
    messages = planning.messages_check(messages)
    snap = await snapshot_aget()
    steps = await planning.plan_make(
        snap, trace, messages, model=model, capabilities=capabilities, optimize_for=optimize_for, chain=chain
    )
    return await plan_run(trace, steps, messages)


async def aexecute_with_fallback(messages: Messages, *, chain: str = "default", **kwargs: Any) -> Result:
    """Try the chain's models in order (per-step timeouts, retries for transient errors)."""
    return await acomplete(messages, chain=chain, **kwargs)


@_records_inline
async def aconsensus(
    messages: Messages,
    *,
    models: list[str],
    aggregator: str = "majority",
    judge_model: str | None = None,
    **kwargs: Any,
) -> ConsensusResult:
    """Ask every model at once and aggregate (majority, judge, similarity or fastest)."""
    if aggregator not in AGGREGATORS:
        raise InvalidRequest(f"aggregator must be one of {', '.join(AGGREGATORS)}, not {aggregator!r}.")
    if not isinstance(models, list | tuple) or not models or not all(isinstance(m, str) for m in models):
        raise InvalidRequest("models must be a non-empty list of model names.")
    if len(set(models)) != len(models):
        raise InvalidRequest("models lists a model twice.")
    if aggregator == "judge" and not judge_model:
        raise InvalidRequest("The judge aggregator needs judge_model.")
    trace = planning.trace_make(kwargs, fn="consensus")
    messages = planning.messages_check(messages)
    snap = await snapshot_aget()
    needed, _ = planning.tokens_needed(trace, messages, len(trace.system or ""))
    member_models = [planning.model_get(snap, name) for name in models]
    for m in member_models:
        planning.explicit_model_check(m, needed, alone=len(member_models) == 1, sampling=trace.sampling)
    steps = [Step(model=m, role="consensus") for m in member_models]
    planning.context_filter(steps, needed)
    judge_step = None
    if aggregator == "judge" and judge_model:
        judge = planning.model_get(snap, judge_model)
        planning.explicit_model_check(judge, 0, alone=True)
        judge_step = Step(model=judge, role="judge")
    return await consensus_run(trace, steps, messages, aggregator=aggregator, judge_step=judge_step)


@_records_inline
async def aconsensus_decide(
    messages: Messages,
    members: list[MemberOutcome],
    *,
    aggregator: str = "majority",
    judge_model: str | None = None,
    first: int | None = None,
    **kwargs: Any,
) -> ConsensusResult:
    """The aggregate of members a caller ran itself (the playground streams each one): the
    same rules and explanations as `aconsensus`, the judge (if any) one more recorded call.
    At least one member must have answered; `first` is the index of the first to answer."""
    if aggregator not in AGGREGATORS:
        raise InvalidRequest(f"aggregator must be one of {', '.join(AGGREGATORS)}, not {aggregator!r}.")
    if not any(m.result is not None for m in members):
        raise InvalidRequest("No member answered: there is nothing to aggregate.")
    trace = planning.trace_make(kwargs, fn="consensus")
    judge_step = None
    if aggregator == "judge" and judge_model:
        snap = await snapshot_aget()
        judge = planning.model_get(snap, judge_model)
        planning.explicit_model_check(judge, 0, alone=True)
        judge_step = Step(model=judge, role="judge")
    return await consensus_decide(
        trace, members, messages, aggregator=aggregator, judge_step=judge_step, first=first
    )


_TASK_KEYS = frozenset(
    {"messages", "capabilities", "optimize_for", "model", "chain", "task_type", "content", "kwargs"}
)


async def _parallel_one(task: dict[str, Any], defaults: dict[str, Any]) -> Result:
    if not isinstance(task, dict):
        raise InvalidRequest("Each parallel task must be a mapping (messages, capabilities, …).")
    extra = {k: v for k, v in task.items() if k not in _TASK_KEYS}
    kwargs = {**defaults, **dict(task.get("kwargs") or {}), **extra}
    kwargs.pop("model_override", None)
    model = task.get("model") or dict(task.get("kwargs") or {}).get("model_override")
    if task.get("task_type"):
        if task.get("optimize_for"):
            kwargs["optimize_for"] = task["optimize_for"]
        return await aroute(task["task_type"], task.get("content", ""), **kwargs)
    return await acomplete(
        task.get("messages"),  # type: ignore[arg-type]
        model=model,
        capabilities=task.get("capabilities"),
        optimize_for=task.get("optimize_for") or "cost",
        chain=task.get("chain"),
        **kwargs,
    )


@_records_inline
async def aexecute_parallel(
    tasks: list[dict[str, Any]], *, concurrency: int = 8, **kwargs: Any
) -> list[Result | OrchestratorError]:
    """Run independent requests concurrently (at most `concurrency` at once); results come
    back in order, a failed one as the OrchestratorError in its slot. Each task is a mapping
    like acomplete's arguments ({"messages", "capabilities", "optimize_for", "model",
    "chain"}) or a route ({"task_type", "content"}); `kwargs` are defaults for every task."""
    if not isinstance(tasks, list):
        raise InvalidRequest("tasks must be a list of mappings.")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidRequest("concurrency must be a positive integer.")
    unknown = sorted(set(kwargs) - planning.COMMON_KWARGS)
    if unknown:
        raise TypeError(f"execute_parallel() got unexpected keyword argument(s): {', '.join(unknown)}")
    kwargs.pop("trace_id", None)  # one trace per task
    gate = asyncio.Semaphore(concurrency)

    async def run(task: dict[str, Any]) -> Result | OrchestratorError:
        async with gate:
            try:
                return await _parallel_one(task, kwargs)
            except OrchestratorError as exc:
                return exc
            except TypeError as exc:
                return InvalidRequest(f"Bad task: {exc}")

    return list(await asyncio.gather(*(run(t) for t in tasks)))


async def astream(
    messages: Messages | None = None,
    *,
    model: str | None = None,
    task_type: str | None = None,
    content: str | None = None,
    chain: str | None = None,
    capabilities: list[str] | None = None,
    optimize_for: str = "cost",
    **kwargs: Any,
) -> AsyncIterator[StreamEvent]:
    """Stream one answer as StreamEvents: `attempt`, `delta`…, then `done` (with the Result)
    or `error`; `attempt_failed` when a model fails before its first token (the next one
    starts). Bad input raises an OrchestratorError on the first `anext()`, before any event.
    Closing the iterator (or cancelling its task) cancels the upstream request."""
    snap = await snapshot_aget()
    if task_type:
        route = planning.route_get(snap, task_type)
        trace = planning.trace_make(kwargs, route=route, fn="astream")
        text = planning.route_content(route, content if content is not None else "", trace.processor_options)
        sent: Messages = [{"role": "user", "content": text}]
        steps = await planning.route_plan(
            snap, trace, route, sent, optimize_for=optimize_for if optimize_for != "cost" else None
        )
    else:
        trace = planning.trace_make(kwargs, fn="astream")
        if messages is None and content is not None:
            messages = [{"role": "user", "content": content}]
        sent = planning.messages_check(messages)
        steps = await planning.plan_make(
            snap, trace, sent, model=model, capabilities=capabilities, optimize_for=optimize_for, chain=chain
        )
    inner: AsyncGenerator[StreamEvent, None] = plan_stream(trace, steps, sent)
    inline = _inline_records()
    try:
        async for event in inner:
            if inline and event.kind in ("done", "error"):
                # Before the last event: a consumer may stop reading once it has it. (Not on
                # close: that may happen anywhere, even in a garbage collector's finalizer; a
                # `cancelled` record is written by the next flush.)
                await acall_records_flush()
            yield event
    finally:
        await inner.aclose()


async def aselect_model(
    capabilities: list[str], *, optimize_for: str = "cost", tokens_needed: int = 0
) -> str:
    """The name of the best model for these capabilities (what acomplete would try first)."""
    snap = await snapshot_aget()
    return (
        await planning.selection(
            snap, capabilities=list(capabilities), optimize_for=optimize_for, needed=tokens_needed, out=0
        )
    )[0].name


def select_model(capabilities: list[str], *, optimize_for: str = "cost", tokens_needed: int = 0) -> str:
    """Sync twin of `aselect_model` (no event loop needed; reads cached config)."""
    _no_running_loop("select_model")
    if optimize_for not in OPTIMIZE_FOR:
        raise InvalidRequest(f"optimize_for must be one of {', '.join(OPTIMIZE_FOR)}, not {optimize_for!r}.")
    snap = snapshot_get()
    latency = stats.latency_p50s_sync(frozenset(snap.models)) if optimize_for == "latency" else {}
    quality = stats.quality_scores_sync(capabilities) if optimize_for == "quality" else {}
    ranked = candidates_select(
        snap,
        capabilities=list(capabilities),
        optimize_for=optimize_for,
        tokens_needed=tokens_needed,
        tokens_out=0,
        latency_p50=latency,
        quality=quality,
    )
    return ranked[0].name


async def arecords_flush() -> None:
    """Wait until every CallRecord of finished calls is in the database."""
    await acall_records_flush()


# -- Sync wrappers ------------------------------------------------------------------------


def _no_running_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"orchestrator.{name}() is the sync API and cannot run inside a running event loop "
        f"(an async view, a coroutine): use `await orchestrator.a{name}(...)` there."
    )


def _outer_loop_running() -> bool:
    """True when we run inside sync_to_async under a live event loop (async_to_sync reuses it)."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    pid = getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None)
    return loop is not None and pid == os.getpid() and loop.is_running()


def _run_sync(name: str, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    _no_running_loop(name)
    owns_loop = not _outer_loop_running()

    async def main() -> T:
        try:
            return await fn(*args, **kwargs)
        finally:
            if owns_loop:
                # The loop ends with this call: close the provider clients made on it.
                await aclose_clients()

    try:
        return async_to_sync(main)()
    finally:
        call_records_flush()


def route(task_type: str, content: str, **kwargs: Any) -> Result:
    return _run_sync("route", aroute, task_type, content, **kwargs)


def complete(messages: Messages, **kwargs: Any) -> Result:
    return _run_sync("complete", acomplete, messages, **kwargs)


def execute_with_fallback(messages: Messages, *, chain: str = "default", **kwargs: Any) -> Result:
    return _run_sync("execute_with_fallback", aexecute_with_fallback, messages, chain=chain, **kwargs)


def consensus(messages: Messages, **kwargs: Any) -> ConsensusResult:
    return _run_sync("consensus", aconsensus, messages, **kwargs)


def execute_parallel(tasks: list[dict[str, Any]], **kwargs: Any) -> list[Result | OrchestratorError]:
    return _run_sync("execute_parallel", aexecute_parallel, tasks, **kwargs)


def records_flush() -> None:
    """Sync twin of `arecords_flush`."""
    call_records_flush()
