"""Per-key rate limits and budgets, shared across processes through Redis.

`limits_admit` checks and reserves rpm, tpm and budget together before a call: with Redis
that is one round trip (one Lua script, `window.ADMIT_LUA`); `limits_account` settles the
reservation with the real tokens and cost after the call (one more script, run after the
response is sent). rpm is a sliding-window log and spend a nano-dollar counter per period,
seeded from the call records (the source of truth) when it is cold or older than
SPEND_TTL_S. The rule is described in `gateway.limits.window`; without Redis the same rule
runs in process (`LocalLimits`), exact for one server process (`make run`).

If Redis cannot be reached (or stalls past REDIS_TIMEOUT_MS) the request is admitted
unchecked: an outage of the counters' store does not take the gateway down with it. The
outage is logged once, then once a minute (`routing.cache_guard`). Settlements that fall in
the guard's back-off (Redis left alone for a second after a failure) are kept in process and
sent ahead of the next admission once Redis is usable again (pipelined), so a reservation
made just before a failure is not held until its TTL (a key's first request reserves the
rest of its budget: held, it would refuse every request of that key for
GATEWAY_RESERVATION_TTL_S).
Functions that depend on the time take `now`, so tests move the clock instead of sleeping.

Here: admission and settlement. Beside them: `store` (the cache, the Redis client, the
counters' names and scripts), `spend` (spend from the records), `refusals` (the 429s),
`alerts` (budget alerts) and `window` (the rule, in Lua and in process).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from gateway.errors import GatewayError
from gateway.keys import KeyInfo
from gateway.limits import window
from gateway.limits.alerts import ALERT_THRESHOLDS, alert_due, budget_alerts_check
from gateway.limits.refusals import refusal_raise
from gateway.limits.spend import spend_current, spend_from_records, spend_recorded_async
from gateway.limits.store import (
    ADMIT_SCRIPT,
    LOCAL,
    NANO,
    SETTLE_NAMES,
    SETTLE_SCRIPT,
    SPEND_TTL_S,
    UNSETTLED,
    cache_backend,
    counter_keys_made,
    limits_local_reset,
    period_bounds,
    redis_client,
    reservation_ttl_ms,
    utcnow,
)
from gateway.limits.window import COLD
from gateway.redis_client import AsyncRedis
from routing.cache_guard import cache_failed, cache_recovered, cache_usable

__all__ = [
    "ALERT_THRESHOLDS",
    "NANO",
    "SPEND_TTL_S",
    "Admission",
    "budget_alerts_check",
    "limits_account",
    "limits_admit",
    "limits_local_reset",
    "period_bounds",
    "spend_current",
    "spend_from_records",
    "utcnow",
]

log = logging.getLogger("gateway.limits")

# Reservation ids only need to be unique among a key's open reservations: drawn from a
# generator seeded once from the OS (and again in a forked child), as os.urandom per request
# costs more than the rest of the admission's own work.
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


# -- Before a call -----------------------------------------------------------------------


@dataclass
class Admission:
    """What the pre-call check reserved; the post-call accounting settles it."""

    keys: dict[str, str]
    spent_usd: Decimal | None
    checked: bool = True  # False: the cache was unreachable and the request went unchecked
    request_id: str = ""
    reserved: bool = False  # a reservation waits to be settled by limits_account
    settled: bool = field(default=False, repr=False)
    # The cache's keys of the counters the settlement script takes (SETTLE_NAMES order).
    settle_keys: list[str] = field(default_factory=list, repr=False)


def _nano(amount: Decimal | None) -> int | None:
    return None if amount is None else int(amount * NANO)


async def limits_admit(
    *,
    info: KeyInfo,
    now: datetime | None = None,
    estimate_usd: Decimal | None = None,
    estimate_tokens: int | None = None,
) -> Admission:
    """Check and reserve this request against the key's rpm, tpm and budget; refuse (429)
    when one is reached. `estimate_*`: the request's expected cost and tokens, if the caller
    knows them (else the key's largest settled request is reserved). Keys without limits or
    budget cost nothing here.

    If the cache (Redis) cannot be reached the request is admitted unchecked (logged once per
    outage): an outage of the counters' store does not take the gateway down with it."""
    if info.rpm is None and info.tpm is None and info.budget_usd is None:
        return Admission(keys={}, spent_usd=None)
    client = redis_client()
    if client is not None and UNSETTLED and cache_usable():
        await _unsettled_send(client)  # settlements skipped in a back-off go first
    if client is not None and not cache_usable():
        return Admission(keys={}, spent_usd=None, checked=False)
    try:
        admission = await _admit(
            info=info,
            now=now or utcnow(),
            client=client,
            est_nano=_nano(estimate_usd),
            est_tokens=estimate_tokens,
        )
    except GatewayError:
        raise
    except Exception as exc:
        if client is None:
            raise
        cache_failed(
            what=f"rate limits and budget of key {info.name!r} unchecked: the cache is unavailable", exc=exc
        )
        return Admission(keys={}, spent_usd=None, checked=False)
    if client is not None:
        cache_recovered()
    return admission


async def _admit(
    *, info: KeyInfo, now: datetime, client: AsyncRedis | None, est_nano: int | None, est_tokens: int | None
) -> Admission:
    keys, admit_keys, settle_keys = counter_keys_made(info, now)
    request_id = f"{_ids.getrandbits(64):016x}"
    budget_nano = _nano(info.budget_usd)
    now_ms = now.timestamp() * 1000
    for _ in range(3):  # a cold spend counter: seed it from the records, then check again
        if client is not None:
            reply = await ADMIT_SCRIPT(
                client,
                admit_keys,
                [
                    int(now_ms),
                    request_id,
                    -1 if info.rpm is None else info.rpm,
                    -1 if info.tpm is None else info.tpm,
                    -1 if budget_nano is None else budget_nano,
                    -1 if est_nano is None else est_nano,
                    -1 if est_tokens is None else est_tokens,
                    reservation_ttl_ms(),
                    window.WINDOW_MS,
                    window.MAX_TTL_S,
                ],
            )
            verdict = window.verdict_from_reply(reply)
        else:
            verdict = LOCAL.admit(
                key_id=info.id,
                spend_key=keys["spend"],
                now_ms=now_ms,
                request_id=request_id,
                rpm=info.rpm,
                tpm=info.tpm,
                budget_nano=budget_nano,
                est_nano=est_nano,
                est_tokens=est_tokens,
                ttl_ms=reservation_ttl_ms(),
            )
        if verdict.outcome != COLD:
            break
        start, end = period_bounds(info.budget_period, now)
        spent = await spend_recorded_async(info.id, start, end)
        if client is not None:
            await client.pipeline(
                [("SET", cache_backend().make_key(keys["spend"]), int(spent * NANO), "NX", "EX", SPEND_TTL_S)]
            )
        else:
            LOCAL.spend_seed(keys["spend"], int(spent * NANO), SPEND_TTL_S)
    else:
        raise RuntimeError("the spend counter stayed cold after seeding")
    refusal_raise(info=info, verdict=verdict, now=now)
    spent_usd = Decimal(verdict.spent_nano) / NANO if info.budget_usd is not None else None
    reserved = info.budget_usd is not None or info.tpm is not None
    return Admission(
        keys=keys, spent_usd=spent_usd, request_id=request_id, reserved=reserved, settle_keys=settle_keys
    )


# -- After a call ------------------------------------------------------------------------


async def limits_account(
    *, info: KeyInfo, admission: Admission, tokens: int, cost_usd: Decimal | None, now: datetime | None = None
) -> None:
    """Settle the request's reservation with its real tokens and cost (0 and None for a call
    that failed); raise budget alerts. Call it once per admission, success or not: an
    unsettled reservation holds its share of the limits until GATEWAY_RESERVATION_TTL_S.
    Never raises: accounting must not fail a call that succeeded (errors are logged)."""
    if not admission.reserved or not admission.checked or admission.settled:
        return
    admission.settled = True
    client = redis_client()
    if client is not None and not cache_usable():
        # Redis is in the guard's back-off: settled ahead of the next admission instead.
        UNSETTLED.append((info, admission, tokens, cost_usd, now or utcnow()))
        return
    try:
        await _account(
            info=info,
            admission=admission,
            tokens=tokens,
            cost_usd=cost_usd,
            now=now or utcnow(),
            client=client,
        )
    except Exception as exc:
        if client is not None:
            cache_failed(what=f"usage of a call to key {info.name!r} not counted", exc=exc)
        else:
            log.error("could not add a call's usage to the counters of key %r", info.name, exc_info=True)


async def _account(
    *,
    info: KeyInfo,
    admission: Admission,
    tokens: int,
    cost_usd: Decimal | None,
    now: datetime,
    client: AsyncRedis | None,
) -> None:
    nano = int((cost_usd or Decimal(0)) * NANO)
    now_ms = now.timestamp() * 1000
    keys = admission.keys
    if client is not None:
        make_key = cache_backend().make_key
        total = await SETTLE_SCRIPT(
            client,
            admission.settle_keys or [make_key(keys[n]) for n in SETTLE_NAMES],
            [
                int(now_ms),
                admission.request_id,
                max(0, int(tokens)),
                max(0, nano),
                window.WINDOW_MS,
                window.MAX_TTL_S,
                "1" if info.tpm is not None else "0",
                "1" if info.budget_usd is not None else "0",
            ],
        )
        spent_nano = None if total is None else int(total)
    else:
        spent_nano = LOCAL.settle(
            key_id=info.id,
            spend_key=keys["spend"],
            now_ms=now_ms,
            request_id=admission.request_id,
            tokens=max(0, int(tokens)),
            nano=max(0, nano),
            has_tpm=info.tpm is not None,
            has_budget=info.budget_usd is not None,
        )
    if info.budget_usd is None or spent_nano is None:
        return
    spent = Decimal(spent_nano) / NANO
    if alert_due(info=info, spent_usd=spent):
        await budget_alerts_check(info=info, spent_usd=spent, now=now)


UNSETTLED_CHUNK = 200  # skipped settlements sent ahead of one admission, pipelined


async def _unsettled_send(client: AsyncRedis) -> None:
    """Send the settlements skipped in a back-off, oldest first, a chunk at a time."""
    chunk = [UNSETTLED.popleft() for _ in range(min(len(UNSETTLED), UNSETTLED_CHUNK))]
    outcomes = await asyncio.gather(
        *(
            _account(info=info, admission=admission, tokens=tokens, cost_usd=cost, now=now, client=client)
            for info, admission, tokens, cost, now in chunk
        ),
        return_exceptions=True,
    )
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    if any(isinstance(o, TimeoutError | ConnectionError | OSError) for o in failed):
        cache_failed(what=f"usage of {len(failed)} earlier calls not counted", exc=failed[0])
    elif failed:
        log.error("could not settle %d earlier calls", len(failed), exc_info=failed[0])
