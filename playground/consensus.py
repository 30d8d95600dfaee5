"""The consensus stream: every member streams live into its column, then the aggregate.

Members run concurrently as separate `astream` calls sharing the run's trace id (role
"consensus"), so their deltas reach the page as they arrive, multiplexed over one SSE
stream. When they are done the engine decides, by the same rules and in the same words as
`orchestrator.aconsensus` (`orchestrator.aconsensus_decide`: majority, similarity, the judge,
fastest); the judge is one more recorded call (role "judge"). For `fastest`, the first success wins and the other members are cancelled
(the engine records them as cancelled).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from django.utils import timezone

from playground.models import ColumnStatus, PlaygroundColumn, PlaygroundRun
from playground.streaming import (
    KEEPALIVE_S,
    attempt_dict,
    billed_figures,
    column_finish,
    json_default,
    run_messages,
    sse,
)
from routing import orchestrator
from routing.errors import OrchestratorError
from routing.orchestrator import ConsensusResult, MemberOutcome, Result


class MemberFailed(Exception):
    def __init__(
        self, message: str, *, error_class: str = "", text: str = "", attempts: list | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error_class = error_class
        self.text = text
        self.attempts = attempts or []


async def _member(
    run: PlaygroundRun, column: PlaygroundColumn, queue: asyncio.Queue[tuple[int, str, dict[str, Any]]]
) -> Result:
    stream = orchestrator.astream(
        run_messages(run),
        model=column.target_model,
        source="playground",
        trace_id=run.trace_id,
        role="consensus",
        temperature=run.temperature,
        max_tokens=run.max_tokens,
    )
    parts: list[str] = []
    failed: list[dict[str, Any]] = []
    try:
        async for event in stream:
            if event.kind == "delta":
                parts.append(event.text)
                queue.put_nowait((column.position, "delta", {"text": event.text}))
            elif event.kind == "attempt_failed":
                info = attempt_dict(event.attempt) or {"model": event.model, "status": "error"}
                info["error"] = info.get("error") or event.error
                failed.append(info)
                parts.clear()
                queue.put_nowait((column.position, "attempt_failed", info))
            elif event.kind == "done" and event.result is not None:
                return event.result
            elif event.kind == "error":
                raise MemberFailed(
                    event.error or "The model failed.",
                    error_class=event.error_class,
                    text="".join(parts),
                    attempts=failed,
                )
        raise MemberFailed("The stream ended without an answer.", text="".join(parts), attempts=failed)
    except OrchestratorError as exc:
        raise MemberFailed(
            exc.message,
            error_class=exc.code,
            attempts=[a.to_dict() for a in getattr(exc, "attempts", [])] or failed,
        ) from exc
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def _final(outcome: BaseException | Result, started: float) -> dict[str, Any]:
    if isinstance(outcome, Result):
        return {
            "status": ColumnStatus.OK,
            "text": outcome.text,
            "model": outcome.model,
            "ttft_ms": outcome.ttft_ms,
            "latency_ms": outcome.latency_ms,
            "input_tokens": outcome.usage.input_tokens,
            "output_tokens": outcome.usage.output_tokens,
            "cost_usd": outcome.cost_usd,
            "simulated": outcome.simulated,
            "attempts": [a.to_dict() for a in outcome.attempts],
        }
    latency = (time.perf_counter() - started) * 1000
    if isinstance(outcome, asyncio.CancelledError):
        return {
            "status": ColumnStatus.CANCELLED,
            "error": "Cancelled: another member answered first.",
            "latency_ms": latency,
        }
    if isinstance(outcome, MemberFailed):
        return {
            "status": ColumnStatus.ERROR,
            "error": outcome.message,
            "error_class": outcome.error_class,
            "text": outcome.text,
            "attempts": outcome.attempts,
            "latency_ms": latency,
        }
    return {
        "status": ColumnStatus.ERROR,
        "error": str(outcome) or type(outcome).__name__,
        "latency_ms": latency,
    }


def _public(final: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(final, default=json_default))


async def _aggregate(run: PlaygroundRun, members: list[MemberOutcome], first: int | None) -> dict[str, Any]:
    aggregator = run.aggregator or "majority"
    decided: ConsensusResult = await orchestrator.aconsensus_decide(
        run_messages(run),
        members,
        aggregator=aggregator,
        judge_model=run.judge_model or None,
        first=first,
        source="playground",
        trace_id=run.trace_id,
    )
    judge = decided.judge
    return _public(
        {
            "text": decided.text,
            "model": decided.model,
            "aggregator": aggregator,
            "explanation": decided.explanation,
            "votes": decided.votes,
            # Which members gave the same answer (as the majority aggregator folds them).
            "groups": [
                {"models": g.models, "votes": g.votes, "text": g.text[:200]}
                for g in orchestrator.answer_groups(members)
            ]
            if aggregator in ("majority", "judge")
            else [],
            "judge": None
            if judge is None
            else {
                "model": judge.model,
                "text": judge.text,
                "cost_usd": judge.cost_usd,
                "latency_ms": judge.latency_ms,
            },
            # Everything the run's trace billed: every member (cancelled and failed ones
            # too: they paid for the tokens they used) and the judge.
            "cost_usd": (await billed_figures(trace_id=run.trace_id)).get("cost_usd"),
        }
    )


async def consensus_events(*, run: PlaygroundRun, may_run: bool) -> AsyncIterator[str]:
    """SSE for a consensus run: `member_delta`/`member_attempt_failed` live, `member` when a
    member ends, `judging` while the judge reads, then `consensus` (the aggregate)."""
    yield "retry: 86400000\n\n"
    claimed = may_run and (
        await PlaygroundRun.objects.filter(pk=run.pk, consensus_status=ColumnStatus.PENDING).aupdate(
            consensus_status=ColumnStatus.STREAMING
        )
    )
    if not claimed:
        await run.arefresh_from_db()
        yield sse("consensus", {"status": run.consensus_status, **(run.consensus or {})})
        yield sse("end", {})
        return
    columns = [c async for c in run.columns.order_by("position")]
    await PlaygroundColumn.objects.filter(run=run).aupdate(
        status=ColumnStatus.STREAMING, started_at=timezone.now()
    )
    started = time.perf_counter()
    queue: asyncio.Queue[tuple[int, str, dict[str, Any]]] = asyncio.Queue()
    tasks = {asyncio.ensure_future(_member(run, c, queue)): c for c in columns}
    pending = set(tasks)
    outcomes: dict[int, BaseException | Result] = {}
    first: int | None = None
    getter: asyncio.Future | None = None
    status = ColumnStatus.ERROR
    payload: dict[str, Any] = {}
    try:
        yield sse("status", {"status": ColumnStatus.STREAMING})
        while pending:
            if getter is None:
                getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(
                pending | {getter}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                yield ": waiting for the members\n\n"
                continue
            if getter in done:
                position, kind, data = getter.result()
                getter = None
                yield sse(f"member_{kind}", {"position": position, **data})
            finished = [t for t in done if t in pending]
            if finished:
                while not queue.empty():  # deltas that arrived before the member ended
                    position, kind, data = queue.get_nowait()
                    yield sse(f"member_{kind}", {"position": position, **data})
            for task in finished:
                pending.discard(task)
                column = tasks[task]
                outcome: BaseException | Result = (
                    asyncio.CancelledError() if task.cancelled() else (task.exception() or task.result())
                )
                outcomes[column.position] = outcome
                final = _final(outcome, started)
                if final["status"] != ColumnStatus.OK:  # cut short: show what it billed
                    final.update(await _member_billed(run, column))
                await column_finish(column.pk, final)
                yield sse("member", {"position": column.position, **_public(final)})
                if run.aggregator == "fastest" and isinstance(outcome, Result) and first is None:
                    first = column.position
                    for other in pending:
                        other.cancel()
        members = []
        for column in columns:
            outcome = outcomes[column.position]
            if isinstance(outcome, Result):
                members.append(MemberOutcome(model=column.target_model, status="ok", result=outcome))
            else:
                final = _final(outcome, started)
                members.append(
                    MemberOutcome(model=column.target_model, status=final["status"], error=final["error"])
                )
        if not any(m.result is not None for m in members):
            payload = _public(
                {
                    "error": "Every member failed: " + "; ".join(f"{m.model}: {m.error}" for m in members),
                    "cost_usd": (await billed_figures(trace_id=run.trace_id)).get("cost_usd"),
                }
            )
        else:
            if run.aggregator == "judge" and run.judge_model:
                yield sse("judging", {"model": run.judge_model})
            first_index = next((i for i, c in enumerate(columns) if c.position == first), None)
            payload = await _aggregate(run, members, first_index)
            status = ColumnStatus.OK
        payload["wall_ms"] = (time.perf_counter() - started) * 1000
        yield sse("consensus", {"status": status, **payload})
    except (asyncio.CancelledError, GeneratorExit):
        status = ColumnStatus.CANCELLED
        payload = {"error": "Stopped before the consensus finished."}
        raise
    except Exception as exc:  # an engine error while aggregating: show it, never a 500 mid-stream
        payload = {"error": getattr(exc, "message", None) or str(exc) or type(exc).__name__}
        yield sse("consensus", {"status": status, **payload})
    finally:
        if getter is not None:
            getter.cancel()
        for task in pending:
            task.cancel()
        if pending:
            # Let the members' streams close so the engine records them as cancelled.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
        if status == ColumnStatus.CANCELLED:
            # Stopped: the members cut short keep what they billed, and so does the total.
            with contextlib.suppress(asyncio.CancelledError):
                for column in columns:
                    if column.position not in outcomes:
                        figures = await _member_billed(run, column)
                        if figures:
                            await PlaygroundColumn.objects.filter(pk=column.pk).aupdate(**figures)
                total = (await billed_figures(trace_id=run.trace_id)).get("cost_usd")
                payload = _public({**payload, "cost_usd": total})
        await PlaygroundRun.objects.filter(pk=run.pk).aupdate(consensus_status=status, consensus=payload)
        if status != ColumnStatus.OK:
            await PlaygroundColumn.objects.filter(run=run, status=ColumnStatus.STREAMING).aupdate(
                status=ColumnStatus.CANCELLED if status == ColumnStatus.CANCELLED else ColumnStatus.ERROR,
                finished_at=timezone.now(),
            )
    yield sse("end", {})


async def _member_billed(run: PlaygroundRun, column: PlaygroundColumn) -> dict[str, Any]:
    """What one member's calls billed (members share the run's trace; the judge has its own role)."""
    return await billed_figures(trace_id=run.trace_id, model_name=column.target_model, role="consensus")
