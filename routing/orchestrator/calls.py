"""The engine's async entry points (re-exported by `routing.orchestrator`, documented there)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from django.conf import settings

from metrics.services import acall_records_flush
from routing.engine import planning, routes
from routing.engine.config import snapshot_aget
from routing.engine.consensus import AGGREGATORS, consensus_decide, consensus_run
from routing.engine.execute import plan_run
from routing.engine.streaming import plan_stream
from routing.engine.trace import Step, Trace
from routing.engine.types import ConsensusResult, MemberOutcome, Result, StreamEvent
from routing.errors import InvalidRequest, OrchestratorError

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


# The same for the entry points in this package's other modules (embeddings).
records_inline = _records_inline


@_records_inline
async def aroute(task_type: str, content: str | Messages, **kwargs: Any) -> Result:
    """Run a task route: pre-processor, prompt (per-model variant first), the route's model
    or a selection, post-processor, and the route's fallback chain on failure. `content` is
    the user's text, or a whole conversation (canonical messages): the route's prompt goes
    first, the conversation's own system messages after it, the pre-processor applies to
    the last user message's text."""
    optimize_for = kwargs.pop("optimize_for", None)
    snap = await snapshot_aget()
    route = routes.route_get(snap, task_type)
    trace = planning.trace_make(kwargs, route=route, fn="route")
    messages = routes.route_messages(route, content, trace.processor_options)
    steps = await routes.route_plan(snap, trace, route, messages, optimize_for=optimize_for)
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
    planning.needs_set(trace, messages)
    needed, _ = planning.tokens_needed(trace, messages, len(trace.system or ""))
    member_models = [planning.model_get(snap, name) for name in models]
    for m in member_models:
        planning.explicit_model_check(m, needed, alone=len(member_models) == 1, trace=trace)
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
    """Stream one answer as StreamEvents: `attempt`, `delta` and `tool_call`…, then `done`
    (with the Result) or `error`; `attempt_failed` when a model fails before its first token
    (the next one starts). A route (`task_type`) takes `content` (text) or `messages` (the
    whole conversation). Bad input raises an OrchestratorError on the first `anext()`, before
    any event. Closing the iterator (or cancelling its task) cancels the upstream request."""
    snap = await snapshot_aget()
    if task_type:
        route = routes.route_get(snap, task_type)
        trace = planning.trace_make(kwargs, route=route, fn="astream")
        stream_check(trace)
        conversation = messages if messages is not None else (content if content is not None else "")
        sent = routes.route_messages(route, conversation, trace.processor_options)
        steps = await routes.route_plan(
            snap, trace, route, sent, optimize_for=optimize_for if optimize_for != "cost" else None
        )
    else:
        trace = planning.trace_make(kwargs, fn="astream")
        stream_check(trace)
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


def stream_check(trace: Trace) -> None:
    """A stream carries one answer: `n > 1` is refused before anything is sent."""
    if trace.chat.n > 1:
        raise InvalidRequest(
            "n > 1 cannot be streamed: ask for one answer per stream, or for n answers without stream.",
            param="n",
            code="unsupported_parameter",
        )


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


async def arecords_flush() -> None:
    """Wait until every CallRecord of finished calls is in the database."""
    await acall_records_flush()
