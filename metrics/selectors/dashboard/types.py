"""What the dashboard selectors return: sums per group, window totals, the whole page's data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from metrics.histogram import Hist, hist_percentiles
from metrics.models import CallStatus

ERROR_STATUSES = frozenset({CallStatus.ERROR, CallStatus.TIMEOUT})


@dataclass
class Bucket:
    """Sums for a group (a model in a time bucket, a route, a provider…)."""

    count: int = 0
    errors: int = 0
    cost: Decimal = Decimal(0)
    input_tokens: int = 0
    output_tokens: int = 0
    latency_sum: float = 0.0
    latency_count: int = 0
    cost_unknown: int = 0
    latency_hist: Hist = field(default_factory=dict)
    ttft_hist: Hist = field(default_factory=dict)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.count if self.count else None

    @property
    def avg_latency(self) -> float | None:
        return self.latency_sum / self.latency_count if self.latency_count else None

    def percentiles(self, *ps: float) -> list[float | None]:
        return hist_percentiles(self.latency_hist, ps)

    def ttft_percentiles(self, *ps: float) -> list[float | None]:
        return hist_percentiles(self.ttft_hist, ps)

    def add(
        self,
        *,
        count: int,
        errors: int,
        cost: Decimal,
        input_tokens: int,
        output_tokens: int,
        latency_sum: float,
        latency_count: int,
        cost_unknown: int = 0,
    ) -> None:
        """Add one row's (or group's) sums; the histograms are merged by the caller."""
        self.count += count
        self.errors += errors
        self.cost += cost
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.latency_sum += latency_sum
        self.latency_count += latency_count
        self.cost_unknown += cost_unknown

    def add_sums(self, other: Bucket) -> None:
        self.add(
            count=other.count,
            errors=other.errors,
            cost=other.cost,
            input_tokens=other.input_tokens,
            output_tokens=other.output_tokens,
            latency_sum=other.latency_sum,
            latency_count=other.latency_count,
            cost_unknown=other.cost_unknown,
        )


@dataclass
class Totals:
    count: int = 0
    errors: int = 0
    cost: Decimal = Decimal(0)
    tokens: int = 0
    p50: float | None = None
    p95: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.count if self.count else None


@dataclass
class DashboardData:
    buckets: list[datetime]
    series: dict[tuple[datetime, str], Bucket]
    by_model: dict[str, Bucket]
    breakdowns: dict[str, dict[Any, Bucket]]
    chains: dict[tuple[str, int, str], int]
    totals: Totals
    previous: Totals
    covered_until: datetime | None
    notes: list[str]
    hidden: dict[str, int] = field(default_factory=dict)  # source → calls the source filter leaves out

    @property
    def models(self) -> list[str]:
        return sorted(self.by_model, key=lambda m: (-self.by_model[m].cost, -self.by_model[m].count, m))

    @property
    def empty(self) -> bool:
        return self.totals.count == 0
