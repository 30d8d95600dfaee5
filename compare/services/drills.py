"""Fault drills: N requests through a chain or route with chosen models made to fail at the
provider-client layer (routing.engine.faults), and a report of what the engine did."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from compare.models import Drill, DrillStatus, DrillTargetKind
from compare.selectors import drill_breaker_scope
from compare.services.queueing import DRILL_EXECUTE, broker_check, queue_name, tasks_send
from metrics.selectors.records import trace_usage
from routing import orchestrator
from routing.errors import AllAttemptsFailed, OrchestratorError
from routing.models import FallbackChain, ModelConfig, TaskRoute
from routing.orchestrator import FaultSpec, breaker_reset, breaker_scope, breaker_states, inject_faults

logger = logging.getLogger(__name__)

FAULT_KINDS: dict[str, str] = {
    "rate_limit": "429 rate limit",
    "server_error": "500 server error",
    "timeout": "timeout",
    "stream_cut": "stream cut mid-answer",
}
MAX_REQUESTS = 1000
MAX_CONCURRENCY = 32
DRILL_LEASE = timedelta(seconds=3700)
DEFAULT_PROMPT = "Reply with one short sentence confirming you are available."


class DrillInputError(ValueError):
    pass


@dataclass(frozen=True)
class FaultInput:
    model: str
    kind: str
    rate: float

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "kind": self.kind, "rate": self.rate}


def fault_parse(text: str) -> FaultInput:
    """`MODEL:KIND[:RATE]` (the CLI's --fail); rate defaults to 1.0. Model names may hold ':'."""
    parts = text.strip().split(":")
    rate = 1.0
    if len(parts) >= 3:
        try:
            rate = float(parts[-1])
        except ValueError:
            pass
        else:
            parts = parts[:-1]
    if len(parts) < 2:
        raise DrillInputError(f"{text!r}: write MODEL:KIND[:RATE], e.g. gpt-4o:server_error:1.0.")
    return FaultInput(model=":".join(parts[:-1]), kind=parts[-1], rate=rate)


def faults_validate(faults: list[FaultInput]) -> list[FaultInput]:
    if not faults:
        raise DrillInputError("Mark at least one model as failing.")
    known = set(ModelConfig.objects.filter(name__in=[f.model for f in faults]).values_list("name", flat=True))
    seen: set[str] = set()
    for fault in faults:
        if fault.model not in known:
            raise DrillInputError(f"Unknown model {fault.model!r}.")
        if fault.kind not in FAULT_KINDS:
            raise DrillInputError(
                f"{fault.model}: unknown fault {fault.kind!r}; use {', '.join(FAULT_KINDS)}."
            )
        if not 0.0 < fault.rate <= 1.0:
            raise DrillInputError(f"{fault.model}: the failure rate must be above 0 and at most 1.")
        if fault.model in seen:
            raise DrillInputError(f"{fault.model} is marked failing twice.")
        seen.add(fault.model)
    return faults


def drill_target_models(*, target_kind: str, target: str) -> list[str]:
    """The models a drill target would try, in order (for the form and the report)."""
    if target_kind == DrillTargetKind.CHAIN:
        chain = FallbackChain.objects.filter(name=target).first()
        if chain is None:
            raise DrillInputError(f"Unknown fallback chain {target!r}.")
        return list(chain.steps.order_by("position").values_list("model__name", flat=True))
    if target_kind == DrillTargetKind.ROUTE:
        route = TaskRoute.objects.select_related("model", "fallback_chain").filter(task_type=target).first()
        if route is None:
            raise DrillInputError(f"Unknown task route {target!r}.")
        names = [route.model.name] if route.model else []
        if route.fallback_chain:
            names += [
                n
                for n in route.fallback_chain.steps.order_by("position").values_list("model__name", flat=True)
                if n not in names
            ]
        return names
    raise DrillInputError(f"Unknown target kind {target_kind!r}; use chain or route.")


def drill_create(
    *,
    user: Any,
    target_kind: str,
    target: str,
    faults: list[FaultInput],
    requests: int,
    concurrency: int = 4,
    prompt: str = "",
    stream: bool = False,
    baseline: bool = False,
    origin: str = "web",
) -> Drill:
    planned = drill_target_models(target_kind=target_kind, target=target)
    faults_validate(faults)
    if target_kind == DrillTargetKind.CHAIN:
        outside = [f.model for f in faults if f.model not in planned]
        if outside:
            raise DrillInputError(
                f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not in chain {target} "
                f"({' → '.join(planned)}): faulting it would test nothing."
            )
    if not 1 <= requests <= MAX_REQUESTS:
        raise DrillInputError(f"Requests must be between 1 and {MAX_REQUESTS}.")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise DrillInputError(f"Concurrency must be between 1 and {MAX_CONCURRENCY}.")
    return Drill.objects.create(
        created_by=user if getattr(user, "is_authenticated", False) else None,
        origin=origin,
        target_kind=target_kind,
        target=target,
        faults=[f.to_dict() for f in faults],
        requests=requests,
        concurrency=concurrency,
        prompt=prompt.strip() or DEFAULT_PROMPT,
        stream=stream,
        baseline=baseline,
    )


def drill_launch(*, drill_kwargs: dict[str, Any]) -> Drill:
    """Create a drill and queue it (browser path). QueueUnavailable: nothing stored."""
    broker_check()
    with transaction.atomic():
        drill = drill_create(**drill_kwargs)
        queue = queue_name("drills")
        transaction.on_commit(lambda: tasks_send(DRILL_EXECUTE, [[drill.pk]], queue=queue))
    return drill


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _figures(values: list[float]) -> dict[str, float | None]:
    return {
        "mean": statistics.fmean(values) if values else None,
        "p50": _percentile(values, 0.5),
        "p95": _percentile(values, 0.95),
        "max": max(values) if values else None,
    }


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


def _openings(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    opened = []
    for model, state in after.items():
        if state.get("state") not in ("open", "half_open"):
            continue
        prior = before.get(model, {})
        if prior.get("state") != state.get("state") or prior.get("opened_at") != state.get("opened_at"):
            opened.append({"model": model, "state": state.get("state"), "opened_at": state.get("opened_at")})
    return opened


def drill_report(drill: Drill, outcomes: list[dict[str, Any]], before: dict, after: dict) -> dict[str, Any]:
    ok = [o for o in outcomes if o["ok"]]
    served: dict[str, int] = {}
    for o in ok:
        served[o["served_by"]] = served.get(o["served_by"], 0) + 1
    traces = [o["trace_id"] for o in outcomes]
    usage = trace_usage(trace_ids=traces)
    records = {"total": usage.calls if usage else 0, "ok": usage.ok if usage else 0}
    paths: dict[str, int] = {}
    for o in outcomes:
        key = " → ".join(f"{p['model']} {'✓' if p['status'] == 'ok' else '✗'}" for p in o["path"]) or "—"
        paths[key] = paths.get(key, 0) + 1
    added = [o["added_latency_ms"] for o in ok if o["added_latency_ms"] is not None]
    # Requests that never tried a failing model of the target (circuit open, no key, disabled).
    try:
        planned = set(drill_target_models(target_kind=drill.target_kind, target=drill.target))
    except DrillInputError:
        planned = set()
    skipped = {
        f["model"]: sum(
            1 for o in outcomes if o["path"] and f["model"] not in {p["model"] for p in o["path"]}
        )
        for f in drill.faults
        if f["model"] in planned
    }
    return {
        "requests": len(outcomes),
        "ok": len(ok),
        "failed": len(outcomes) - len(ok),
        "success_rate": len(ok) / len(outcomes) if outcomes else 0.0,
        "served_by": dict(sorted(served.items(), key=lambda kv: -kv[1])),
        "path_counts": dict(sorted(paths.items(), key=lambda kv: -kv[1])),
        "attempts": sum(len(o["path"]) for o in outcomes),
        "latency_ms": _figures([o["latency_ms"] for o in outcomes]),
        "added_latency_ms": _figures(added),
        "records": {"total": records["total"], "ok": records["ok"]},
        "breakers": {"before": before, "after": after, "opened": _openings(before, after)},
        "never_tried": skipped,
        "faults": drill.faults,
        "requests_detail": sorted(outcomes, key=lambda o: o["index"]),
    }


def _difference(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def baseline_report(baseline: list[dict[str, Any]], outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """The same requests without faults, and how much slower the drilled ones were."""
    base = _figures([o["latency_ms"] for o in baseline if o["ok"]])
    drilled = _figures([o["latency_ms"] for o in outcomes if o["ok"]])
    return {
        "requests": len(baseline),
        "ok": sum(1 for o in baseline if o["ok"]),
        "latency_ms": base,
        "added_ms": {k: _difference(drilled[k], base[k]) for k in ("mean", "p50", "p95")},
        "trace_ids": [o["trace_id"] for o in baseline],
    }


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
