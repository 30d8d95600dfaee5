"""Celery tasks: thin wrappers that take an id and call one service.

Queues come from settings.CELERY_TASK_ROUTES / CELERY_QUEUES_BY_PURPOSE. Every task is
`acks_late` with `reject_on_worker_lost`: a worker killed mid-task leaves its message to be
delivered again, and the services' conditional claims make the second delivery safe.
Worker signals start and stop each worker process's lease renewal (compare.leases).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_process_shutdown, worker_ready, worker_shutdown

from compare import leases
from compare.services import cells, drills, sweep
from compare.services.queueing import CELL_EXECUTE, CELLS_SWEEP, DRILL_EXECUTE

logger = logging.getLogger(__name__)

_CELL_LIMIT, _CELL_HARD_LIMIT, _ = cells.time_limits()


@shared_task(
    bind=True,
    name=CELL_EXECUTE,
    acks_late=True,
    reject_on_worker_lost=True,
    # Transient errors are bounded by the cell's own retry count; waits for a slot back off to 30 s.
    max_retries=None,
    soft_time_limit=_CELL_LIMIT,
    time_limit=_CELL_HARD_LIMIT,
)
def cell_execute(self, cell_id: int, dispatch: int | None = None) -> str:
    try:
        outcome = cells.cell_run(
            cell_id=cell_id,
            worker=self.request.hostname or "",
            dispatch=dispatch,
            deferrals=self.request.retries or 0,
        )
    except SoftTimeLimitExceeded:
        cells.cell_fail(cell_id=cell_id, reason=f"timed out after {_CELL_LIMIT:g} s")
        return "failed"
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(
    bind=True,
    name=DRILL_EXECUTE,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=3600,
    time_limit=3660,
)
def drill_execute(self, drill_id: int) -> str:
    try:
        drill = drills.drill_run(drill_id=drill_id)
    except SoftTimeLimitExceeded:
        drills.drill_fail(drill_id=drill_id, reason="timed out")
        return "failed"
    return drill.status if drill is not None else "gone"


@shared_task(name=CELLS_SWEEP, acks_late=True, soft_time_limit=60, time_limit=90)
def cells_sweep() -> int:
    """Periodic (beat): requeue cells whose worker died while they ran."""
    return sweep.cells_sweep()


@worker_ready.connect
@worker_process_init.connect
def _leases_renew_in_this_process(**kwargs: Any) -> None:
    """The process that runs tasks (the worker itself for threads/solo, each prefork child)."""
    leases.renewal_start()


@worker_shutdown.connect
@worker_process_shutdown.connect
def _leases_give_back(**kwargs: Any) -> None:
    leases.renewal_stop()
