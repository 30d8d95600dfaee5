"""Periodic repair (celery beat): cells whose worker died, runs whose messages were lost.

Each cell is re-queued at most once per loss: the conditional UPDATE that hands it back also
takes the next dispatch number, and only the message carrying that number may run it (an
older one, redelivered later, does nothing). Cells queued, waiting for a slot on a live
worker, or running on one are left alone.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import F, Max, Q
from django.utils import timezone

from compare.models import CellStatus, CompareCell, CompareRun, RunStatus
from compare.services.cells import cell_abandon, claim_lapsed
from compare.services.queueing import CELL_EXECUTE, queue_name, tasks_send

logger = logging.getLogger(__name__)


def cells_sweep() -> int:
    """Hand cells whose claim lapsed (their worker died) or whose deferred message never came
    back to the queue, or close them when their run has stopped. Returns how many were re-queued."""
    now = timezone.now()
    for cell in (
        CompareCell.objects.select_related("run")
        .filter(claim_lapsed(now))
        .exclude(run__status=RunStatus.RUNNING)
    ):
        cell_abandon(cell, reason=f"its worker was lost; run {cell.run.status}")
    requeue: dict[str, list[list[int]]] = defaultdict(list)
    lapsed = CompareCell.objects.filter(claim_lapsed(now), run__status=RunStatus.RUNNING)
    for cell_id, claims, dispatch, queue in lapsed.values_list("id", "claims", "dispatch", "run__queue"):
        handed_back = CompareCell.objects.filter(
            pk=cell_id, status=CellStatus.RUNNING, claims=claims, dispatch=dispatch
        ).update(status=CellStatus.PENDING, lease_until=None, dispatch=F("dispatch") + 1)
        if handed_back:
            requeue[queue or queue_name("cells")].append([cell_id, dispatch + 1])
    overdue = CompareCell.objects.filter(
        status=CellStatus.PENDING, lease_until__lt=now, run__status=RunStatus.RUNNING
    ).values_list("id", "dispatch", "lease_until", "run__queue")
    for cell_id, dispatch, due, queue in overdue:
        # Deferred by a worker that has not come back to it: that worker is gone.
        if _redispatch(cell_id, dispatch, lease_until=due):
            requeue[queue or queue_name("cells")].append([cell_id, dispatch + 1])
    _stalled_runs(requeue)
    return _send(requeue)


STALLED_AFTER_S = 180  # above the longest backoff (60 s) and slot wait between claims


def _redispatch(cell_id: int, dispatch: int, *, lease_until: datetime | None) -> bool:
    return bool(
        CompareCell.objects.filter(
            pk=cell_id, status=CellStatus.PENDING, dispatch=dispatch, lease_until=lease_until
        ).update(lease_until=None, dispatch=F("dispatch") + 1)
    )


def _stalled_runs(requeue: dict[str, list[list[int]]]) -> None:
    """Re-queue the never-received cells of runs where nothing has happened for a while: their
    messages were lost (the filesystem broker of `make run` forgets what a stopped worker had
    taken; a killed worker's prefetched messages come back only after Redis's visibility
    timeout). The old messages, should they surface, are superseded."""
    quiet_since = timezone.now() - timedelta(seconds=STALLED_AFTER_S)
    stalled = (
        CompareRun.objects.filter(status=RunStatus.RUNNING, created_at__lt=quiet_since)
        .annotate(last_claim=Max("cells__claimed_at"), last_finish=Max("cells__finished_at"))
        .filter(Q(last_claim__isnull=True) | Q(last_claim__lt=quiet_since))
        .filter(Q(last_finish__isnull=True) | Q(last_finish__lt=quiet_since))
    )
    for run in stalled:
        waiting = CompareCell.objects.filter(run=run, status=CellStatus.PENDING, lease_until__isnull=True)
        ids = [
            [cell_id, dispatch + 1]
            for cell_id, dispatch in waiting.values_list("id", "dispatch")
            if _redispatch(cell_id, dispatch, lease_until=None)
        ]
        if ids:
            logger.warning("compare run %s stalled: re-queueing its %d waiting cells", run.pk, len(ids))
            requeue[run.queue or queue_name("cells")].extend(ids)


def _send(requeue: dict[str, list[list[int]]]) -> int:
    for queue, arg_lists in requeue.items():
        tasks_send(CELL_EXECUTE, arg_lists, queue=queue)
    return sum(len(a) for a in requeue.values())
