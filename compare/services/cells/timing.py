"""A cell's time limits, claim lease and back-off waits."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from compare.models import CellStatus, CompareCell


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


def claim_lapses_at(cell: CompareCell) -> Any:
    if cell.lease_until is not None:
        return cell.lease_until
    return (cell.claimed_at or timezone.now()) + timedelta(seconds=lease_s())
