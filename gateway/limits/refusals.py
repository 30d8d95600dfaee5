"""The 429 a refused admission answers: which limit, how much is used, when to retry."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from gateway.errors import GatewayError
from gateway.keys import KeyInfo
from gateway.limits.store import NANO, period_bounds
from gateway.limits.window import ADMITTED, BUDGET, RPM, Verdict


def refusal_raise(*, info: KeyInfo, verdict: Verdict, now: datetime) -> None:
    """Raise the 429 for a verdict other than ADMITTED (return for ADMITTED)."""
    if verdict.outcome == ADMITTED:
        return
    retry = str(max(1, -(-verdict.retry_ms // 1000)))
    if verdict.outcome == RPM:
        raise GatewayError(
            429,
            f"Rate limit reached for key {info.name!r}: {info.rpm} requests per minute. Retry after {retry} s.",
            code="rate_limit_exceeded",
            headers={"retry-after": retry},
        )
    if verdict.outcome == BUDGET:
        spent = Decimal(verdict.spent_nano) / NANO
        assert info.budget_usd is not None
        if verdict.in_flight:
            raise GatewayError(
                429,
                f"Budget of key {info.name!r} is held by requests in flight: spent {spent:.4f} of "
                f"{info.budget_usd:.4f} USD this {info.budget_period}, the rest reserved. Retry after {retry} s.",
                code="budget_exceeded",
                headers={"retry-after": retry},
            )
        _, end = period_bounds(info.budget_period, now)
        retry = str(max(1, int((end - now).total_seconds())))
        raise GatewayError(
            429,
            f"Budget exhausted for key {info.name!r}: spent {spent:.4f} of {info.budget_usd:.4f} USD "
            f"this {info.budget_period} (UTC). It resets at {end:%Y-%m-%d %H:%M} UTC.",
            code="budget_exceeded",
            headers={"retry-after": retry},
        )
    held = " (the rest is reserved by requests in flight)" if verdict.in_flight else ""
    raise GatewayError(
        429,
        f"Rate limit reached for key {info.name!r}: {info.tpm} tokens per minute{held}. Retry after {retry} s.",
        code="tokens_rate_limit_exceeded",
        headers={"retry-after": retry},
    )
