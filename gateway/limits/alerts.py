"""Budget alerts: raised once per key, period and threshold when the spend crosses it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from asgiref.sync import sync_to_async

from gateway.keys import KeyInfo
from gateway.limits.store import cache_backend, period_bounds
from gateway.services import budget_alert_raise

ALERT_THRESHOLDS = (80, 100)  # percent of the budget


def alert_due(*, info: KeyInfo, spent_usd: Decimal) -> bool:
    """Whether the spend has reached the lowest threshold (the check is worth making)."""
    return (
        info.budget_usd is not None
        and info.budget_usd > 0
        and spent_usd * 100 >= info.budget_usd * ALERT_THRESHOLDS[0]
    )


async def budget_alerts_check(*, info: KeyInfo, spent_usd: Decimal, now: datetime) -> None:
    assert info.budget_usd is not None
    start, _ = period_bounds(info.budget_period, now)
    for threshold in ALERT_THRESHOLDS:
        if spent_usd * 100 < info.budget_usd * threshold:
            break
        # One process raises each alert; the unique constraint settles any race.
        if await sync_to_async(cache_backend().add)(
            f"gw:alert:{info.id}:{start:%Y%m%d}:{threshold}", 1, 40 * 24 * 3600
        ):
            await sync_to_async(budget_alert_raise)(
                api_key_id=info.id, period_start=start, threshold=threshold, spent_usd=spent_usd
            )
