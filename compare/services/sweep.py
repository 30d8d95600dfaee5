"""Periodic repair (celery beat): cells whose worker died, runs whose messages were lost."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Max, Q
from django.utils import timezone

from compare.models import CellStatus, CompareCell, CompareRun, RunStatus
from compare.services.cells import cell_abandon, lease_s
from compare.services.queueing import queue_name, tasks_send

logger = logging.getLogger(__name__)


def cells_sweep() -> int:
    """Hand cells whose claim lapsed (their worker died) back to the queue, or close them when
    their run has stopped. Returns how many cells were re-queued."""
    from compare.tasks import cell_execute

    cutoff = timezone.now() - timedelta(seconds=lease_s())
    for cell in (
        CompareCell.objects.select_related("run")
        .filter(status=CellStatus.RUNNING, claimed_at__lt=cutoff)
        .exclude(run__status=RunStatus.RUNNING)
    ):
        cell_abandon(cell, reason=f"its worker was lost; run {cell.run.status}")
    stale = list(
        CompareCell.objects.filter(
            status=CellStatus.RUNNING, claimed_at__lt=cutoff, run__status=RunStatus.RUNNING
        ).values_list("id", "run__queue")
    )
    for cell_id, queue in stale:
        tasks_send(cell_execute, [[cell_id]], queue=queue or queue_name("cells"))
    return len(stale) + _requeue_stalled_runs()


STALLED_AFTER_S = 180  # above the longest backoff (60 s) and slot wait between claims


def _requeue_stalled_runs() -> int:
    """Re-queue the waiting cells of runs where nothing has happened for a while: their
    messages were lost (the filesystem broker of `make run` forgets what a stopped worker had
    taken; retries waiting in a worker's memory die with it). A duplicate message is harmless:
    the cell is claimed by state."""
    from compare.tasks import cell_execute

    quiet_since = timezone.now() - timedelta(seconds=STALLED_AFTER_S)
    stalled = (
        CompareRun.objects.filter(status=RunStatus.RUNNING, created_at__lt=quiet_since)
        .annotate(last_claim=Max("cells__claimed_at"), last_finish=Max("cells__finished_at"))
        .filter(Q(last_claim__isnull=True) | Q(last_claim__lt=quiet_since))
        .filter(Q(last_finish__isnull=True) | Q(last_finish__lt=quiet_since))
    )
    requeued = 0
    for run in stalled:
        ids = list(
            CompareCell.objects.filter(run=run, status=CellStatus.PENDING).values_list("id", flat=True)
        )
        if ids:
            logger.warning("compare run %s stalled: re-queueing its %d waiting cells", run.pk, len(ids))
            tasks_send(cell_execute, [[i] for i in ids], queue=run.queue or queue_name("cells"))
            requeued += len(ids)
    return requeued
