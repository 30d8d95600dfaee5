"""Running one cell: claim it, call the engine once (or reuse its recorded answer), check,
settle its spend, write its end state."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from compare import leases
from compare.assertions import checks_passed
from compare.models import CellStatus, CompareCell, RunStatus
from compare.services.cells.calls import (
    acall,
    answer_from_record,
    checks_run,
    finished_call,
    is_transient,
    judge_traces,
    price_model,
    system_prompt_for,
)
from compare.services.cells.spend import spend_reserve, spend_settle
from compare.services.cells.timing import (
    DEFER_GRACE_S,
    busy_backoff_s,
    claim_lapsed,
    claim_lapses_at,
    lease_s,
    retry_backoff_s,
)
from compare.services.runs import cell_estimate, run_finish_if_complete, run_stop
from compare.slots import slot_acquire, slot_release
from metrics.selectors.records import trace_cost, trace_last
from routing.errors import OrchestratorError, ProviderError

logger = logging.getLogger(__name__)


@dataclass
class CellOutcome:
    status: str  # "done" | "failed" | "skipped" | "busy" | "retry" | "gone"
    retry_in: float | None = None
    detail: str = ""


def _finish(cell: CompareCell, claims: int, **fields: Any) -> bool:
    """Write the cell's end state if we still hold the claim."""
    fields.setdefault("finished_at", timezone.now())
    return bool(
        CompareCell.objects.filter(pk=cell.pk, status=CellStatus.RUNNING, claims=claims).update(**fields)
    )


def cell_run(
    *, cell_id: int, worker: str = "", dispatch: int | None = None, deferrals: int = 0
) -> CellOutcome:
    """Run one cell if it is still waiting; see compare.services.cells for the guarantees.

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
        elif claim_lapses_at(cell) <= now:
            cell_abandon(cell, reason=f"its worker was lost; run {cell.run.status}")
        return CellOutcome("gone", detail=f"run {cell.run.status}")
    if cell.status == CellStatus.RUNNING and claim_lapses_at(cell) > now:
        # Another worker holds it, or a dead worker's claim has not lapsed yet: look again
        # once it would have (seconds when claims are renewed).
        remaining = (claim_lapses_at(cell) - now).total_seconds()
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
                spend_settle(cell, stale_reservation)
            return _run_claimed(cell)
        finally:
            leases.cell_drop(cell.pk)
    finally:
        slot_release(slot)


def _run_claimed(cell: CompareCell) -> CellOutcome:
    claims = cell.claims
    earlier = finished_call(cell.trace_id)
    reserved = Decimal("0")
    try:
        if earlier is not None:
            answer = answer_from_record(earlier)
        else:
            system_prompt = system_prompt_for(cell)
            estimate = cell_estimate(
                spec_price_model=price_model(cell),
                system_prompt=system_prompt or "",
                prompt=cell.prompt.input,
                max_tokens=cell.run.max_tokens,
            )
            reserved = estimate or Decimal("0")
            if not spend_reserve(cell, reserved):
                _finish(cell, claims, status=CellStatus.SKIPPED, error="spend cap reached")
                run_stop(run_id=cell.run_id, status=RunStatus.CAPPED, reason="spend cap reached")
                return CellOutcome("skipped", detail="spend cap reached")
            answer = async_to_sync(acall)(cell, system_prompt)
    except Exception as exc:
        spent = trace_cost(trace_ids=(cell.trace_id,))
        spend_settle(cell, reserved, spent)
        return _failed(cell, claims, exc, spent)

    checks = checks_run(cell, answer)
    spent = trace_cost(trace_ids=(cell.trace_id, *judge_traces(cell)))
    spend_settle(cell, reserved, spent)
    if answer.record_id is None:
        record = finished_call(cell.trace_id)
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
    if is_transient(exc) and cell.retries < int(settings.COMPARE_CELL_MAX_RETRIES):
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
        spend_settle(cell, cell.reserved_usd, trace_cost(trace_ids=(cell.trace_id,)))
