"""Running sums of call records per dimension combination, and the row layout they read."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from metrics.histogram import Hist, hist_add, hist_encode, hist_merge, hist_merge_encoded
from metrics.models import ROLLUP_DIMENSIONS, CallRollup, CallRollupByModel
from metrics.rollups.buckets import floor_to

DIMENSIONS = ROLLUP_DIMENSIONS  # the dimensions of a rollup row, in key order
RAW_FIELDS = (
    "created_at",
    *DIMENSIONS,
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "price_source",
    "latency_ms",
    "ttft_ms",
)

Key = tuple[Any, ...]
ModelKey = tuple[str, str, str]  # model_name, source, status: a CallRollupByModel row


class Agg:
    """Running sums for one dimension combination."""

    __slots__ = (
        "count",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "cost_usd",
        "cost_unknown",
        "latency_sum_ms",
        "latency_count",
        "ttft_sum_ms",
        "ttft_count",
        "latency_hist",
        "ttft_hist",
    )

    def __init__(self) -> None:
        self.count = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_tokens = 0
        self.cost_usd = Decimal(0)
        self.cost_unknown = 0
        self.latency_sum_ms = 0.0
        self.latency_count = 0
        self.ttft_sum_ms = 0.0
        self.ttft_count = 0
        self.latency_hist: Hist = {}
        self.ttft_hist: Hist = {}

    def add_raw(self, row: tuple[Any, ...]) -> None:
        """Add one raw record laid out as RAW_FIELDS."""
        self.count += 1
        self.input_tokens += row[11] or 0
        self.output_tokens += row[12] or 0
        self.cached_tokens += row[13] or 0
        cost = row[14]
        # Unknown price: the engine says so, or a successful call has no cost. (A failed
        # call without tokens has no cost either, but its price may well be known.)
        if row[15] == "unknown" or (cost is None and row[7] == "ok"):
            self.cost_unknown += 1
        if cost is not None:
            self.cost_usd += cost
        latency = row[16]
        if latency is not None:
            self.latency_sum_ms += latency
            self.latency_count += 1
            hist_add(self.latency_hist, latency)
        ttft = row[17]
        if ttft is not None:
            self.ttft_sum_ms += ttft
            self.ttft_count += 1
            hist_add(self.ttft_hist, ttft)

    def merge(self, other: Agg) -> None:
        self.count += other.count
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_tokens += other.cached_tokens
        self.cost_usd += other.cost_usd
        self.cost_unknown += other.cost_unknown
        self.latency_sum_ms += other.latency_sum_ms
        self.latency_count += other.latency_count
        self.ttft_sum_ms += other.ttft_sum_ms
        self.ttft_count += other.ttft_count
        hist_merge(self.latency_hist, other.latency_hist)
        hist_merge(self.ttft_hist, other.ttft_hist)

    def merge_rollup(self, r: CallRollup | CallRollupByModel) -> None:
        self.count += r.count
        self.input_tokens += r.input_tokens
        self.output_tokens += r.output_tokens
        self.cached_tokens += r.cached_tokens
        self.cost_usd += r.cost_usd
        self.cost_unknown += r.cost_unknown
        self.latency_sum_ms += r.latency_sum_ms
        self.latency_count += r.latency_count
        self.ttft_sum_ms += r.ttft_sum_ms
        self.ttft_count += r.ttft_count
        hist_merge_encoded(self.latency_hist, r.latency_hist)
        hist_merge_encoded(self.ttft_hist, r.ttft_hist)

    def to_rollup(self, *, grain: str, bucket: datetime, key: Key) -> CallRollup:
        return CallRollup(
            grain=grain, bucket=bucket, **dict(zip(DIMENSIONS, key, strict=True)), **self._measures()
        )

    def to_model_rollup(self, *, grain: str, bucket: datetime, key: ModelKey) -> CallRollupByModel:
        return CallRollupByModel(
            grain=grain, bucket=bucket, model_name=key[0], source=key[1], status=key[2], **self._measures()
        )

    def _measures(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "cost_usd": self.cost_usd,
            "cost_unknown": self.cost_unknown,
            "latency_sum_ms": self.latency_sum_ms,
            "latency_count": self.latency_count,
            "ttft_sum_ms": self.ttft_sum_ms,
            "ttft_count": self.ttft_count,
            "latency_hist": hist_encode(self.latency_hist),
            "ttft_hist": hist_encode(self.ttft_hist),
        }


def by_model(groups: dict[Key, Agg]) -> dict[ModelKey, Agg]:
    """Full-dimension aggregates folded to (model_name, source, status)."""
    out: dict[ModelKey, Agg] = {}
    for key, agg in groups.items():
        folded = (key[0], key[4], key[6])
        target = out.get(folded)
        if target is None:
            target = out[folded] = Agg()
        target.merge(agg)
    return out


def raw_key(row: tuple[Any, ...]) -> Key:
    """The dimension key of a raw row laid out as RAW_FIELDS (empty ids → 0, no step → -1)."""
    return (
        row[1],
        row[2],
        row[3],
        row[4] or 0,
        row[5],
        row[6] or 0,
        row[7],
        row[8],
        -1 if row[9] is None else row[9],
        row[10] or "",
    )


def aggregate_raw(rows: Iterable[tuple[Any, ...]], grain: str) -> dict[tuple[datetime, Key], Agg]:
    """Raw rows (laid out as RAW_FIELDS) folded into (bucket, key) aggregates: the live tail."""
    out: dict[tuple[datetime, Key], Agg] = {}
    for row in rows:
        k = (floor_to(grain, row[0]), raw_key(row))
        agg = out.get(k)
        if agg is None:
            agg = out[k] = Agg()
        agg.add_raw(row)
    return out
