"""Writes: API keys (create, revoke, last use) and budget alerts."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from gateway.db import connections_refresh
from gateway.keys import key_cache_clear, key_display_prefix, key_generate, key_hash
from gateway.models import ApiKey, BudgetAlert, BudgetPeriod

log = logging.getLogger("gateway")

LAST_USED_EVERY_S = 60


def api_key_create(
    *,
    name: str,
    budget_usd: Decimal | None = None,
    budget_period: str = BudgetPeriod.MONTH,
    rpm: int | None = None,
    tpm: int | None = None,
    allowed: list[str] | None = None,
    created_by: Any = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is shown once and never stored."""
    raw = key_generate()
    key = ApiKey(
        name=name,
        prefix=key_display_prefix(raw),
        key_hash=key_hash(raw),
        budget_usd=budget_usd,
        budget_period=budget_period,
        rpm=rpm,
        tpm=tpm,
        allowed=[a.strip() for a in (allowed or []) if a.strip()],
        created_by=created_by,
    )
    key.full_clean()
    key.save()
    return key, raw


def api_key_assign_secret(*, key: ApiKey) -> str:
    """Give an unsaved admin-made key its secret; returns the raw key to show once."""
    raw = key_generate()
    key.prefix = key_display_prefix(raw)
    key.key_hash = key_hash(raw)
    return raw


def api_key_revoke(*, key: ApiKey, now: datetime | None = None) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = now or timezone.now()
        key.save(update_fields=["revoked_at"])
    key_cache_clear()
    return key


# key id -> monotonic time of this process's last write
_last_used_written: dict[int, float] = {}


def api_key_touch_due(*, api_key_id: int) -> bool:
    """True at most once a minute per key per process (the write itself is cheap and rare)."""
    now = time.monotonic()
    last = _last_used_written.get(api_key_id)
    if last is not None and now - last < LAST_USED_EVERY_S:
        return False
    _last_used_written[api_key_id] = now
    return True


def api_key_touch(*, api_key_id: int, now: datetime | None = None) -> None:
    connections_refresh()
    ApiKey.objects.filter(pk=api_key_id).update(last_used_at=now or timezone.now())


def budget_alert_raise(
    *, api_key_id: int, period_start: datetime, threshold: int, spent_usd: Decimal
) -> BudgetAlert | None:
    """Record that a key reached `threshold`% of its budget this period (once) and log it."""
    connections_refresh()
    key = ApiKey.objects.filter(pk=api_key_id).first()
    if key is None or key.budget_usd is None:
        return None
    try:
        alert, created = BudgetAlert.objects.get_or_create(
            api_key=key,
            period_start=period_start,
            threshold=threshold,
            defaults={"period": key.budget_period, "spent_usd": spent_usd, "budget_usd": key.budget_usd},
        )
    except IntegrityError:
        return None
    if created:
        log.warning(
            "API key %r reached %s%% of its %s budget: %.4f of %.4f USD",
            key.name,
            threshold,
            key.budget_period,
            spent_usd,
            key.budget_usd,
        )
    return alert
