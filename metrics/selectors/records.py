"""Read-only questions other apps ask of the call records (they never query CallRecord themselves)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Q, Sum

from metrics.models import CallRecord, CallStatus


@dataclass(frozen=True)
class TraceUsage:
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None  # None when a call that used tokens has no known price
    ok: int


def trace_usage(*, trace_ids: Iterable[str], model_name: str = "", role: str = "") -> TraceUsage | None:
    """What the calls of some traces used and billed (optionally one model's, in one role).
    A record without a cost bills nothing when it used no tokens (a failure before the
    answer); with tokens its price is unknown, and so is the total. None: no records."""
    records = CallRecord.objects.filter(trace_id__in=list(trace_ids))
    if model_name:
        records = records.filter(model_name=model_name)
    if role:
        records = records.filter(role=role)
    used = Q(input_tokens__gt=0) | Q(output_tokens__gt=0)
    totals = records.aggregate(
        n=Count("id"),
        ok=Count("id", filter=Q(status=CallStatus.OK)),
        tokens_in=Sum("input_tokens"),
        tokens_out=Sum("output_tokens"),
        cost=Sum("cost_usd"),
        unpriced=Count("id", filter=Q(cost_usd__isnull=True) & used),
    )
    if not totals["n"]:
        return None
    return TraceUsage(
        calls=totals["n"],
        input_tokens=totals["tokens_in"] or 0,
        output_tokens=totals["tokens_out"] or 0,
        cost_usd=None if totals["unpriced"] else Decimal(totals["cost"] or 0),
        ok=totals["ok"],
    )


def trace_cost(*, trace_ids: Iterable[str]) -> Decimal:
    """The recorded cost of every call of these traces (unknown prices count as nothing)."""
    total = CallRecord.objects.filter(trace_id__in=list(trace_ids)).aggregate(total=Sum("cost_usd"))["total"]
    return Decimal(total or 0)


def trace_records(*, trace_ids: Iterable[str], limit: int = 200) -> list[CallRecord]:
    """The attempts of these traces, oldest first."""
    return list(CallRecord.objects.filter(trace_id__in=list(trace_ids)).order_by("created_at", "id")[:limit])


def trace_last(*, trace_id: str, ok_only: bool = False) -> CallRecord | None:
    """The newest attempt of a trace (or its newest successful one)."""
    records = CallRecord.objects.filter(trace_id=trace_id)
    if ok_only:
        records = records.filter(status=CallStatus.OK)
    return records.order_by("-created_at", "-id").first()


def api_key_spend_recorded(*, api_key_id: int, since: datetime, until: datetime | None = None) -> Decimal:
    """What an API key's calls cost from `since` (to `until`): the records are the source of truth."""
    records = CallRecord.objects.filter(api_key_id=api_key_id, created_at__gte=since)
    if until is not None:
        records = records.filter(created_at__lt=until)
    return Decimal(records.aggregate(total=Sum("cost_usd"))["total"] or 0)
