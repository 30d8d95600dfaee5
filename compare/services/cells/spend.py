"""A cell's share of its run's spend cap: reserved before the call, settled from its records after."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import F

from compare.models import CompareCell, CompareRun, RunStatus


def spend_reserve(cell: CompareCell, amount: Decimal) -> bool:
    """Reserve `amount` against the run's spend cap; False when it would pass the cap."""
    run_rows = CompareRun.objects.filter(pk=cell.run_id, status=RunStatus.RUNNING)
    if cell.run.spend_cap_usd is not None:
        run_rows = run_rows.filter(spend_cap_usd__gte=F("spent_usd") + F("reserved_usd") + amount)
    if not run_rows.update(reserved_usd=F("reserved_usd") + amount):
        return False
    CompareCell.objects.filter(pk=cell.pk).update(reserved_usd=amount)
    return True


def spend_settle(cell: CompareCell, reserved: Decimal, total: Decimal | None = None) -> None:
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
