"""Running one cell (prompt × candidate): claim, call the engine once, check, record.

Idempotent by state:
- the claim is a conditional UPDATE (pending → running, or a running claim whose lease
  lapsed because its worker died → running again), so two deliveries never both call; a
  worker renews its claims every heartbeat (compare.leases), so a dead one's lapse in seconds;
- each queueing of a cell carries the cell's dispatch number; a message the cell was
  re-queued past (the sweep's) is a duplicate and does nothing;
- a cell waiting for a provider slot backs off (1 s doubling to 30 s, with jitter) and says
  when its message is due back, so the sweep re-queues only messages that were lost;
- the cell's trace id is fixed when the cell is made and every call joins it, so a
  redelivered task that finds a successful CallRecord in that trace reuses it instead of
  paying for the call again;
- the spend cap is a conditional UPDATE too: a cell reserves its estimated cost against
  the cap before calling and settles the real cost after.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from compare import leases
from compare.assertions import check_local, checks_passed, judge_messages, judge_verdict, spec_from_dict
from compare.models import CandidateKind, CellStatus, CompareCell, CompareRun, RunStatus
from compare.services.runs import cell_estimate, run_finish_if_complete, run_stop
from compare.slots import slot_acquire, slot_release
from metrics.models import CallRecord
from metrics.selectors.records import trace_cost, trace_last
from routing import orchestrator
from routing.errors import AllAttemptsFailed, OrchestratorError, ProviderError
from routing.models import ModelConfig, PromptVersion, TaskRoute

logger = logging.getLogger(__name__)

SOURCE = "batch"


def time_limits() -> tuple[float, float, float]:
    """(soft, hard, lease) seconds: the task's soft limit raises in the task, the hard one kills
    it (prefork pool), and a claim lapses only after both, so no live call is ever taken over."""
    soft = float(settings.COMPARE_CELL_TIME_LIMIT_S)
    margin = max(2.0, soft * 0.05)
    return soft, soft + margin, soft + 2 * margin


def lease_s() -> float:
    """How long a claim holds before another worker may take the cell over."""
    return time_limits()[2]


def retry_backoff_s(retries: int) -> float:
    return min(60.0, 2.0 * (2**retries)) * (0.75 + random.random() / 2)


BUSY_BACKOFF_MAX_S = 30.0
# A deferred message may come back this much later than due (its worker's threads all busy)
# before the sweep takes it for lost.
DEFER_GRACE_S = 60.0


def busy_backoff_s(deferrals: int) -> float:
    """How long a cell waits for a provider slot: 1, 2, 4 … 30 s, each ±50 % (jitter, so
    waiting cells do not come back together)."""
    return min(BUSY_BACKOFF_MAX_S, 2.0 ** min(deferrals, 10)) * (0.5 + random.random())


def claim_lapsed(now: Any) -> Q:
    """Running cells whose claim has lapsed: their worker stopped renewing it (it died), or,
    for a claim taken without renewal, the whole lease has passed."""
    return Q(status=CellStatus.RUNNING) & (
        Q(lease_until__lt=now)
        | Q(lease_until__isnull=True, claimed_at__lt=now - timedelta(seconds=lease_s()))
    )


def _claim_lapses_at(cell: CompareCell) -> Any:
    if cell.lease_until is not None:
        return cell.lease_until
    return (cell.claimed_at or timezone.now()) + timedelta(seconds=lease_s())


@dataclass
class CellOutcome:
    status: str  # "done" | "failed" | "skipped" | "busy" | "retry" | "gone"
    retry_in: float | None = None
    detail: str = ""


@dataclass
class _Answer:
    text: str
    model: str
    latency_ms: float | None
    input_tokens: int
    output_tokens: int
    record_id: int | None
    reused: bool


def _answer_from_record(record: CallRecord) -> _Answer:
    return _Answer(
        text=record.response_text,
        model=record.model_name,
        latency_ms=record.latency_ms,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        record_id=record.pk,
        reused=True,
    )


def _finished_call(trace_id: str) -> CallRecord | None:
    return trace_last(trace_id=trace_id, ok_only=True)


def _trace_cost(*trace_ids: str) -> Decimal:
    return trace_cost(trace_ids=trace_ids)


def _call_kwargs(cell: CompareCell, trace_id: str, role: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"source": SOURCE, "trace_id": trace_id, "role": role}
    run = cell.run
    if run.temperature is not None:
        kwargs["temperature"] = run.temperature
    if run.max_tokens:
        kwargs["max_tokens"] = run.max_tokens
    return kwargs


async def _acall(cell: CompareCell, system_prompt: str | None) -> _Answer:

    candidate = cell.candidate
    prompt = cell.prompt
    kwargs = _call_kwargs(cell, cell.trace_id, "cell")
    if candidate.kind == CandidateKind.MODEL:
        messages = [{"role": "user", "content": prompt.input}]
        result = await orchestrator.acomplete(messages, model=candidate.target, **kwargs)
    else:
        task_type = prompt.task_type if candidate.target == "*" else candidate.target
        if system_prompt is not None:
            kwargs["system"] = system_prompt
        result = await orchestrator.aroute(task_type, prompt.input, **kwargs)
    await orchestrator.arecords_flush()
    record_id = next((a.record_id for a in reversed(result.attempts) if a.status == "ok"), None)
    return _Answer(
        text=result.text,
        model=result.model,
        latency_ms=result.latency_ms,
        input_tokens=result.usage.input_tokens,
        output_tokens=result.usage.output_tokens,
        record_id=record_id,
        reused=False,
    )


async def _ajudge(messages: list[dict[str, str]], *, model: str, kwargs: dict[str, Any]) -> str:

    result = await orchestrator.acomplete(messages, model=model, **kwargs)
    await orchestrator.arecords_flush()
    return result.text


def _checks(cell: CompareCell, answer: _Answer) -> list[dict[str, Any]]:
    results = []
    for index, data in enumerate(cell.run.assertions or []):
        spec = spec_from_dict(data)
        if spec.kind != "judge":
            results.append(check_local(spec, output=answer.text, expected=cell.prompt.expected))
            continue
        # Each judge assertion has its own trace (derived from the cell's), reused on redelivery.
        trace = f"{cell.judge_trace_id[:30]}{index:02d}"
        earlier = _finished_call(trace)
        try:
            if earlier is not None:
                text = earlier.response_text
            else:
                messages = judge_messages(
                    spec, prompt=cell.prompt.input, output=answer.text, expected=cell.prompt.expected
                )
                kwargs = {"source": SOURCE, "trace_id": trace, "role": "judge", "max_tokens": 200}
                text = async_to_sync(_ajudge)(messages, model=spec.model, kwargs=kwargs)
            results.append(judge_verdict(spec, text))
        except (OrchestratorError, ProviderError) as exc:
            results.append(
                {"kind": "judge", "label": spec.label, "passed": False, "detail": f"judge failed: {exc}"}
            )
    return results


def _judge_traces(cell: CompareCell) -> list[str]:
    return [f"{cell.judge_trace_id[:30]}{i:02d}" for i, _ in enumerate(cell.run.assertions or [])]


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, AllAttemptsFailed):
        return any(a.error_class == "transient" for a in exc.attempts) or exc.http_status in (503, 504)
    if isinstance(exc, ProviderError):
        return exc.error_class == "transient"
    return False


def _system_prompt(cell: CompareCell) -> str | None:
    if cell.candidate.kind != CandidateKind.PROMPT:
        return None
    version = PromptVersion.objects.filter(pk=cell.candidate.prompt_version_id or 0).first()
    if version is None:
        raise OrchestratorError("The prompt version was deleted.")
    return version.system_prompt


def _price_model(cell: CompareCell) -> ModelConfig | None:
    candidate = cell.candidate
    if candidate.kind == CandidateKind.MODEL:
        return ModelConfig.objects.filter(name=candidate.target).first()
    task_type = cell.prompt.task_type if candidate.target == "*" else candidate.target
    route = TaskRoute.objects.select_related("model").filter(task_type=task_type).first()
    return route.model if route else None


def _reserve(cell: CompareCell, amount: Decimal) -> bool:
    """Reserve `amount` against the run's spend cap; False when it would pass the cap."""
    run_rows = CompareRun.objects.filter(pk=cell.run_id, status=RunStatus.RUNNING)
    if cell.run.spend_cap_usd is not None:
        run_rows = run_rows.filter(spend_cap_usd__gte=F("spent_usd") + F("reserved_usd") + amount)
    if not run_rows.update(reserved_usd=F("reserved_usd") + amount):
        return False
    CompareCell.objects.filter(pk=cell.pk).update(reserved_usd=amount)
    return True


def _settle(cell: CompareCell, reserved: Decimal, total: Decimal | None = None) -> None:
    """Give back `reserved` and, when `total` (the cell's cost so far, from its records) is
    given, add what is new since the last settlement to the run's spend: a cell that ran
    several times (retries, a dead worker) has each call counted once."""
    delta = Decimal("0")
    cell_fields: dict[str, Any] = {"reserved_usd": Decimal("0")}
    if total is not None:
        delta = total - (cell.cost_usd or Decimal("0"))
        cell.cost_usd = total
        cell_fields["cost_usd"] = total
    CompareRun.objects.filter(pk=cell.run_id).update(
        reserved_usd=F("reserved_usd") - reserved, spent_usd=F("spent_usd") + delta
    )
    CompareCell.objects.filter(pk=cell.pk).update(**cell_fields)


def _finish(cell: CompareCell, claims: int, **fields: Any) -> bool:
    """Write the cell's end state if we still hold the claim."""
    fields.setdefault("finished_at", timezone.now())
    return bool(
        CompareCell.objects.filter(pk=cell.pk, status=CellStatus.RUNNING, claims=claims).update(**fields)
    )


def cell_run(
    *, cell_id: int, worker: str = "", dispatch: int | None = None, deferrals: int = 0
) -> CellOutcome:
    """Run one cell if it is still waiting; see the module docstring for the guarantees.

    `dispatch` is the number the message was queued with: a message the cell has since been
    re-queued past does nothing (None, from older messages: any). `deferrals`: how many times
    this message already waited for a slot (the backoff grows with it)."""
    cell = CompareCell.objects.select_related("run", "prompt", "candidate").filter(pk=cell_id).first()
    if cell is None:
        return CellOutcome("gone")
    if cell.status not in (CellStatus.PENDING, CellStatus.RUNNING):
        return CellOutcome("gone", detail=f"cell already {cell.status}")
    if dispatch is not None and dispatch != cell.dispatch:
        return CellOutcome("gone", detail=f"superseded message ({dispatch} < {cell.dispatch})")
    now = timezone.now()
    if cell.run.status != RunStatus.RUNNING:
        if cell.status == CellStatus.PENDING:
            CompareCell.objects.filter(pk=cell.pk, status=CellStatus.PENDING).update(
                status=CellStatus.CANCELLED, error=f"run {cell.run.status}", finished_at=now
            )
        elif _claim_lapses_at(cell) <= now:
            cell_abandon(cell, reason=f"its worker was lost; run {cell.run.status}")
        return CellOutcome("gone", detail=f"run {cell.run.status}")
    if cell.status == CellStatus.RUNNING and _claim_lapses_at(cell) > now:
        # Another worker holds it, or a dead worker's claim has not lapsed yet: look again
        # once it would have (seconds when claims are renewed).
        remaining = (_claim_lapses_at(cell) - now).total_seconds()
        return CellOutcome("busy", retry_in=max(1.0, min(remaining + 1, 300.0)))

    slot = slot_acquire(cell.candidate.pool or "default", lease_s=lease_s())
    if slot is None:
        wait = busy_backoff_s(deferrals)
        # Say when this message is due back, so the sweep can tell a lost one from a waiting one.
        CompareCell.objects.filter(pk=cell.pk, status=CellStatus.PENDING, dispatch=cell.dispatch).update(
            lease_until=now + timedelta(seconds=wait + DEFER_GRACE_S)
        )
        return CellOutcome("busy", retry_in=wait)
    try:
        claimable = Q(status=CellStatus.PENDING) | claim_lapsed(now)
        claimed = CompareCell.objects.filter(claimable, pk=cell.pk, dispatch=cell.dispatch).update(
            status=CellStatus.RUNNING,
            claimed_at=now,
            lease_until=leases.lease_until(),
            claims=F("claims") + 1,
            worker=worker[:200],
        )
        if not claimed:
            return CellOutcome("gone", detail="claimed by another worker")
        leases.cell_hold(cell.pk)
        try:
            stale_reservation = cell.reserved_usd
            cell.refresh_from_db(fields=["claims", "reserved_usd", "retries", "cost_usd"])
            if stale_reservation:
                # A dead worker's claim: give back what it had reserved against the cap.
                _settle(cell, stale_reservation)
            return _run_claimed(cell)
        finally:
            leases.cell_drop(cell.pk)
    finally:
        slot_release(slot)


def _run_claimed(cell: CompareCell) -> CellOutcome:
    claims = cell.claims
    earlier = _finished_call(cell.trace_id)
    reserved = Decimal("0")
    try:
        if earlier is not None:
            answer = _answer_from_record(earlier)
        else:
            system_prompt = _system_prompt(cell)
            estimate = cell_estimate(
                spec_price_model=_price_model(cell),
                system_prompt=system_prompt or "",
                prompt=cell.prompt.input,
                max_tokens=cell.run.max_tokens,
            )
            reserved = estimate or Decimal("0")
            if not _reserve(cell, reserved):
                _finish(cell, claims, status=CellStatus.SKIPPED, error="spend cap reached")
                run_stop(run_id=cell.run_id, status=RunStatus.CAPPED, reason="spend cap reached")
                return CellOutcome("skipped", detail="spend cap reached")
            answer = async_to_sync(_acall)(cell, system_prompt)
    except Exception as exc:
        spent = _trace_cost(cell.trace_id)
        _settle(cell, reserved, spent)
        return _failed(cell, claims, exc, spent)

    checks = _checks(cell, answer)
    spent = _trace_cost(cell.trace_id, *_judge_traces(cell))
    _settle(cell, reserved, spent)
    if answer.record_id is None:
        record = _finished_call(cell.trace_id)
        answer.record_id = record.pk if record else None
    _finish(
        cell,
        claims,
        status=CellStatus.DONE,
        output=answer.text,
        model_name=answer.model,
        call_record_id=answer.record_id,
        latency_ms=answer.latency_ms,
        input_tokens=answer.input_tokens,
        output_tokens=answer.output_tokens,
        cost_usd=spent,
        checks=checks,
        passed=checks_passed(checks),
        reused=answer.reused,
        error="",
    )
    run_finish_if_complete(run_id=cell.run_id)
    return CellOutcome("done")


def _failed(cell: CompareCell, claims: int, exc: Exception, spent: Decimal) -> CellOutcome:
    message = getattr(exc, "message", "") or str(exc) or type(exc).__name__
    # The trace page of the last attempt shows every attempt of the cell.
    last = trace_last(trace_id=cell.trace_id)
    record_id = last.pk if last is not None else None
    if _is_transient(exc) and cell.retries < int(settings.COMPARE_CELL_MAX_RETRIES):
        # Hand the cell back and retry the task later; the trace stays the same.
        wait = retry_backoff_s(cell.retries)
        given_back = CompareCell.objects.filter(pk=cell.pk, status=CellStatus.RUNNING, claims=claims).update(
            status=CellStatus.PENDING,
            lease_until=timezone.now() + timedelta(seconds=wait + DEFER_GRACE_S),
            retries=F("retries") + 1,
            error=f"retrying: {message}"[:2000],
            call_record_id=record_id,
        )
        if given_back:
            return CellOutcome("retry", retry_in=wait, detail=message)
    if not isinstance(exc, OrchestratorError | ProviderError):
        logger.exception("compare cell %s failed unexpectedly", cell.pk, exc_info=exc)
    _finish(
        cell, claims, status=CellStatus.FAILED, error=message[:2000], cost_usd=spent, call_record_id=record_id
    )
    run_finish_if_complete(run_id=cell.run_id)
    return CellOutcome("failed", detail=message)


def cell_fail(*, cell_id: int, reason: str) -> None:
    """Mark a cell failed whatever its state (retries ran out, or its task hit the time limit)."""
    CompareCell.objects.filter(pk=cell_id, status__in=(CellStatus.PENDING, CellStatus.RUNNING)).update(
        status=CellStatus.FAILED, error=reason[:2000], finished_at=timezone.now()
    )
    run_id = CompareCell.objects.filter(pk=cell_id).values_list("run_id", flat=True).first()
    if run_id is not None:
        run_finish_if_complete(run_id=run_id)


def cell_abandon(cell: CompareCell, *, reason: str) -> None:
    """Close a cell whose worker died after its run stopped, giving back its reservation."""
    closed = CompareCell.objects.filter(pk=cell.pk, status=CellStatus.RUNNING, claims=cell.claims).update(
        status=CellStatus.CANCELLED, error=reason, finished_at=timezone.now()
    )
    if closed and cell.reserved_usd:
        _settle(cell, cell.reserved_usd, _trace_cost(cell.trace_id))
