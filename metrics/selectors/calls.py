"""The call log (keyset pages on created_at, id; never OFFSET) and one call's trace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet

from metrics.filters import Query
from metrics.models import CallRecord

PAGE_SIZE = 50
LIST_FIELDS = (
    "id",
    "trace_id",
    "created_at",
    "source",
    "task_type",
    "model_name",
    "provider_name",
    "attempt",
    "chain_name",
    "chain_step",
    "status",
    "error_class",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "api_key_id",
)


def cursor_encode(record: CallRecord) -> str:
    micros = int(record.created_at.timestamp() * 1_000_000)
    return f"{micros}.{record.id}"


def cursor_decode(raw: str) -> tuple[datetime, int] | None:
    try:
        micros, _, ident = raw.partition(".")
        when = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
        return when.replace(microsecond=int(micros) % 1_000_000), int(ident)
    except (ValueError, OverflowError, OSError):
        return None


@dataclass
class CallPage:
    calls: list[CallRecord]
    older: str | None  # cursor for the next (older) page
    newer: str | None  # cursor for the previous (newer) page


def calls_page(*, q: Query, before: str = "", after: str = "", notes: list[str]) -> CallPage:
    # One lower and one upper bound on created_at only: given two upper bounds (the window's
    # end and the cursor), SQLite's planner may pick the wrong one and walk the index from now.
    base: QuerySet[CallRecord] = CallRecord.objects.filter(**q.lookups()).only(*LIST_FIELDS)
    if after:
        cursor = cursor_decode(after)
        if cursor is None:
            notes.append("That page link is broken: showing the newest calls.")
        else:
            when, ident = cursor
            rows = list(
                base.filter(created_at__gte=max(when, q.start), created_at__lt=q.end)
                .exclude(Q(created_at=when) & Q(id__lte=ident))
                .order_by("created_at", "id")[: PAGE_SIZE + 1]
            )
            has_newer = len(rows) > PAGE_SIZE
            rows = rows[:PAGE_SIZE][::-1]
            return CallPage(
                calls=rows,
                older=cursor_encode(rows[-1]) if rows else None,
                newer=cursor_encode(rows[0]) if rows and has_newer else None,
            )
    qs = base.order_by("-created_at", "-id").filter(created_at__gte=q.start)
    paged = False
    cursor = cursor_decode(before) if before else None
    if before and cursor is None:
        notes.append("That page link is broken: showing the newest calls.")
    if cursor is not None and cursor[0] < q.end:
        when, ident = cursor
        qs = qs.filter(created_at__lte=when).exclude(Q(created_at=when) & Q(id__gte=ident))
        paged = True
    else:
        qs = qs.filter(created_at__lt=q.end)
    rows = list(qs[: PAGE_SIZE + 1])
    has_older = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return CallPage(
        calls=rows,
        older=cursor_encode(rows[-1]) if rows and has_older else None,
        newer=cursor_encode(rows[0]) if rows and paged else None,
    )


@dataclass
class CostLine:
    tokens: int
    price_per_1k: Decimal | None
    cost: Decimal | None


def call_trace(*, record: CallRecord, tool_calls_mark: str = "") -> list[CallRecord]:
    """The attempts of a record's trace in order (texts left out). With `tool_calls_mark`
    (how the recorded answer text introduces its tool calls), each attempt also says whether
    its answer made tool calls (`made_tool_calls`), in the same query."""
    attempts = CallRecord.objects.filter(trace_id=record.trace_id)
    if tool_calls_mark:
        made = Q(response_text__startswith=tool_calls_mark) | Q(
            response_text__contains="\n\n" + tool_calls_mark
        )
        attempts = attempts.annotate(made_tool_calls=ExpressionWrapper(made, output_field=BooleanField()))
    return list(attempts.order_by("created_at", "id").defer("request_text", "response_text")[:200])


def cost_arithmetic(record: CallRecord) -> dict[str, CostLine | Decimal | None]:
    def line(tokens: int, price: Decimal | None) -> CostLine:
        return CostLine(
            tokens=tokens, price_per_1k=price, cost=None if price is None else tokens * price / 1000
        )

    inp = line(record.input_tokens, record.input_price_per_1k)
    out = line(record.output_tokens, record.output_price_per_1k)
    computed = None if inp.cost is None or out.cost is None else inp.cost + out.cost
    return {"input": inp, "output": out, "computed": computed, "stored": record.cost_usd}
