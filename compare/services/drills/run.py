"""Running a drill: claim it, send its requests through the engine with the faults injected
(and, first, a baseline without them), save its progress and report."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.db.models import Q
from django.utils import timezone

from compare.models import Drill, DrillStatus, DrillTargetKind
from compare.selectors import drill_breaker_scope
from compare.services.drills.report import baseline_report, drill_report
from routing import orchestrator
from routing.errors import AllAttemptsFailed, OrchestratorError
from routing.orchestrator import FaultSpec, breaker_reset, breaker_scope, breaker_states, inject_faults

logger = logging.getLogger(__name__)

DRILL_LEASE = timedelta(seconds=3700)  # a running drill whose worker died is claimable after this


async def _one_request(drill: Drill, index: int) -> dict[str, Any]:

    trace_id = uuid.uuid4().hex
    kwargs: dict[str, Any] = {"source": "drill", "trace_id": trace_id, "role": "drill"}
    messages = [{"role": "user", "content": drill.prompt}]
    started = time.perf_counter()
    result = None
    attempts: list[Any] = []
    error = ""
    try:
        if drill.stream:
            if drill.target_kind == DrillTargetKind.CHAIN:
                events = orchestrator.astream(messages, chain=drill.target, **kwargs)
            else:
                events = orchestrator.astream(task_type=drill.target, content=drill.prompt, **kwargs)
            async for event in events:
                if event.kind == "done":
                    result = event.result
                elif event.kind == "error":
                    error = event.error or "stream failed"
                elif event.kind in ("attempt_failed",) and event.attempt is not None:
                    attempts.append(event.attempt)
        elif drill.target_kind == DrillTargetKind.CHAIN:
            result = await orchestrator.aexecute_with_fallback(messages, chain=drill.target, **kwargs)
        else:
            result = await orchestrator.aroute(drill.target, drill.prompt, **kwargs)
    except AllAttemptsFailed as exc:
        attempts = list(exc.attempts)
        error = exc.message
    except OrchestratorError as exc:
        error = exc.message
    wall_ms = (time.perf_counter() - started) * 1000
    if result is not None:
        attempts = list(result.attempts)
    path = [
        {
            "model": a.model,
            "status": a.status,
            "error_class": a.error_class,
            "http_status": a.http_status,
            "latency_ms": a.latency_ms,
            "error": (a.error or "")[:200],
            "record_id": a.record_id,
        }
        for a in attempts
    ]
    served_latency = result.latency_ms if result is not None else None
    ok_attempt = next((a for a in reversed(attempts) if a.status == "ok"), None)
    if ok_attempt is not None and ok_attempt.latency_ms is not None:
        served_latency = ok_attempt.latency_ms
    return {
        "index": index,
        "trace_id": trace_id,
        "ok": result is not None and not error,
        "served_by": result.model if result is not None else None,
        "path": path,
        "latency_ms": wall_ms,
        # Time lost to the faulted attempts, retries and backoff before the serving model answered.
        "added_latency_ms": max(0.0, wall_ms - served_latency) if served_latency is not None else None,
        "error": error[:500],
    }


def _breaker_scope(drill: Drill, *, faulted: bool) -> str:
    return drill_breaker_scope(drill_id=drill.pk, faulted=faulted)


def _progress_save(drill_id: int, progress: dict[str, Any]) -> None:
    """While it runs, a drill's report holds only its progress (the page shows n/N, errors
    and time left); the finished report replaces it."""
    Drill.objects.filter(pk=drill_id, status=DrillStatus.RUNNING).update(report={"progress": progress})


def _progress_new(drill: Drill) -> dict[str, Any]:
    return {"done": 0, "total": drill.requests * (2 if drill.baseline else 1), "errors": 0, "phase": ""}


async def _arun(
    drill: Drill, *, faulted: bool = True, progress: dict[str, Any] | None = None
) -> list[dict[str, Any]]:

    specs = {f["model"]: FaultSpec(f["kind"], rate=float(f["rate"])) for f in drill.faults}
    semaphore = asyncio.Semaphore(drill.concurrency)
    progress = progress if progress is not None else _progress_new(drill)  # shared by both passes
    progress["phase"] = "drill" if faulted else "baseline"
    saving = asyncio.Lock()  # one write at a time, in the order the requests finished
    save = sync_to_async(_progress_save)

    async def bounded(index: int) -> dict[str, Any]:
        async with semaphore:
            outcome = await _one_request(drill, index)
        async with saving:
            progress["done"] += 1
            progress["errors"] += 0 if outcome["ok"] else 1
            await save(drill.pk, dict(progress))
        return outcome

    with breaker_scope(_breaker_scope(drill, faulted=faulted)), inject_faults(specs if faulted else {}):
        outcomes = await asyncio.gather(*(bounded(i) for i in range(drill.requests)))
    await orchestrator.arecords_flush()
    return list(outcomes)


def _breaker_states(scope: str) -> dict[str, dict[str, Any]]:
    try:
        return {name: dict(state) for name, state in breaker_states(scope=scope).items()}
    except Exception:
        logger.warning("breaker states unavailable", exc_info=True)
        return {}


def _breaker_scopes_forget(drill: Drill) -> None:
    for faulted in (True, False):
        try:
            breaker_reset(scope=_breaker_scope(drill, faulted=faulted))
        except Exception:
            logger.warning("could not clear drill %s breaker state", drill.pk, exc_info=True)


def drill_run(*, drill_id: int) -> Drill | None:
    """Claim a queued drill (or one whose worker died) and run it; the report is saved on it."""
    now = timezone.now()
    claimable = Q(status=DrillStatus.PENDING) | Q(
        status=DrillStatus.RUNNING, started_at__lt=now - DRILL_LEASE
    )
    if not Drill.objects.filter(claimable, pk=drill_id).update(status=DrillStatus.RUNNING, started_at=now):
        return Drill.objects.filter(pk=drill_id).first()
    drill = Drill.objects.get(pk=drill_id)
    try:
        progress = _progress_new(drill)
        baseline = async_to_sync(_arun)(drill, faulted=False, progress=progress) if drill.baseline else None
        scope = _breaker_scope(drill, faulted=True)
        before = _breaker_states(scope)
        outcomes = async_to_sync(_arun)(drill, progress=progress)
    except Exception as exc:
        logger.exception("drill %s failed", drill_id)
        _breaker_scopes_forget(drill)
        drill_fail(drill_id=drill_id, reason=f"{type(exc).__name__}: {exc}")
        drill.refresh_from_db()
        return drill
    report = drill_report(drill, outcomes, before, _breaker_states(scope))
    _breaker_scopes_forget(drill)
    if baseline is not None:
        report["baseline"] = baseline_report(baseline, outcomes)
    Drill.objects.filter(pk=drill_id).update(
        status=DrillStatus.DONE,
        report=report,
        success_rate=report["success_rate"],
        finished_at=timezone.now(),
    )
    drill.refresh_from_db()
    return drill


def drill_fail(*, drill_id: int, reason: str) -> None:
    Drill.objects.filter(pk=drill_id, status__in=(DrillStatus.PENDING, DrillStatus.RUNNING)).update(
        status=DrillStatus.FAILED, error=reason[:2000], finished_at=timezone.now()
    )
