"""Reads: budget alerts for the dashboard, key spend, what a key may call."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gateway.keys import KeyInfo
from gateway.limits import period_bounds, spend_current, utcnow
from gateway.models import ApiKey, BudgetAlert


def budget_alerts_active(*, now: Any = None) -> list[dict[str, Any]]:
    """Keys that reached 80% (or all) of their budget in their current period.

    One dict per key (its highest alert): key_name, key_prefix, spent_usd, budget_usd,
    period, percent, threshold, raised_at. Spend is the live figure, not the one at alert time.
    """
    now = now or utcnow()
    alerts = (
        BudgetAlert.objects.filter(api_key__revoked_at__isnull=True, api_key__budget_usd__isnull=False)
        .select_related("api_key")
        .order_by("api_key_id", "-threshold")
    )
    out: list[dict[str, Any]] = []
    seen: set[int] = set()
    for alert in alerts:
        key = alert.api_key
        if key.pk in seen:
            continue
        start, _ = period_bounds(key.budget_period, now)
        if alert.period_start != start or alert.period != key.budget_period:
            continue  # an alert from a period that has rolled over
        seen.add(key.pk)
        spent = spend_current(info=KeyInfo.from_model(key), now=now)
        budget = key.budget_usd or Decimal(0)
        percent = float(spent / budget * 100) if budget > 0 else 100.0
        out.append(
            {
                "key_name": key.name,
                "key_prefix": key.prefix,
                "spent_usd": spent,
                "budget_usd": budget,
                "period": key.budget_period,
                "percent": round(percent, 1),
                "threshold": alert.threshold,
                "raised_at": alert.created_at,
            }
        )
    out.sort(key=lambda a: -a["percent"])
    return out


def api_key_spend(*, key: ApiKey, now: Any = None) -> Decimal:
    return spend_current(info=KeyInfo.from_model(key), now=now)
