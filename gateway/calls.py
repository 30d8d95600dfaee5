"""The one path every gateway endpoint takes: authenticate → authorize → admit (rate limits,
budget) → call the engine → account (the spend settles the key's counters).

An endpoint is a small adapter (`Endpoint`): it parses its request, names the targets the key
must be allowed, calls the engine, says what the call spent and shapes the response and the
errors in its API's format. `endpoint_serve` runs an adapter for a `GatewayRequest` (the
/v1/ endpoints in gateway/routes.py); `call_run` is the same sequence from authorize on, for
callers that authenticate and parse themselves (the native API, whose framework does both).
`limits_admit` and `limits_account` are called here and nowhere else.

Adding an endpoint: a module with its adapter, one line in gateway/routes.py
(docs/architecture.md, "A new gateway endpoint").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings

from gateway.errors import GatewayError, from_orchestrator_error
from gateway.http import GatewayRequest, GatewayResponse, bearer_token, error_response
from gateway.keys import KeyInfo, KeyLookupUnavailable, key_lookup
from gateway.limits import Admission, limits_account, limits_admit
from gateway.services import api_key_touch, api_key_touch_due
from routing.errors import OrchestratorError
from routing.orchestrator import Result, trace_id_new

log = logging.getLogger("gateway")

P = TypeVar("P")  # an endpoint's parsed request
R = TypeVar("R")  # what its engine call returned


@dataclass(frozen=True)
class Spend:
    tokens: int = 0
    cost_usd: Decimal | None = None

    @classmethod
    def of(cls, results: Sequence[Result], *, cost_usd: Decimal | None = None) -> Spend:
        """What these results spent (`cost_usd` overrides the sum of their costs)."""
        tokens = sum(r.usage.input_tokens + r.usage.output_tokens for r in results)
        costs = [r.cost_usd for r in results if r.cost_usd is not None]
        return cls(tokens, cost_usd if cost_usd is not None else (sum(costs, Decimal(0)) if costs else None))


@dataclass
class Admitted:
    """A call let through: the key, its admission, the trace id the engine is to use."""

    info: KeyInfo
    source: str
    admission: Admission | None = None
    endpoint: str = ""  # which endpoint admitted it (recorded on every attempt)
    trace_id: str = field(default_factory=trace_id_new)  # the engine's seeded generator
    spend: Spend | None = None
    _settled: bool = False

    def engine_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "source": self.source,
            "api_key_id": self.info.id,
            "trace_id": self.trace_id,
        }
        if self.endpoint:
            kwargs["endpoint"] = self.endpoint
        return kwargs

    async def release(self) -> None:
        """Give the admission's reservation back: the call failed, or ended without a result
        (a stream cut short). A no-op once settled."""
        await self.settle(Spend())

    async def end(self) -> None:
        """A stream's bookkeeping once its body is sent (or the client is gone): settle what
        it spent, or give the reservation back when it ended without a result."""
        await self.settle(self.spend or Spend())

    async def settle(self, spend: Spend | None = None) -> None:
        """Add the spend to the key's counters and settle the admission's reservation, once;
        never raises (accounting never fails a call that succeeded)."""
        spend = spend or self.spend
        if self._settled or spend is None or self.admission is None:
            return
        self._settled = True
        try:
            await limits_account(
                info=self.info, admission=self.admission, tokens=spend.tokens, cost_usd=spend.cost_usd
            )
        except Exception:
            log.exception("gateway: could not account the spend of trace %s", self.trace_id)


class Endpoint(Generic[P, R]):
    """An API front door. Subclasses set `source` and implement the steps they have; the
    defaults answer errors in OpenAI's shape."""

    source: ClassVar[str] = "gateway"
    # The endpoint's name on its calls' records ("chat.completions", "embeddings", …; "": none).
    endpoint: ClassVar[str] = ""
    admits: ClassVar[bool] = True  # False: no engine call, nothing counted (a listing)

    def parse(self, request: GatewayRequest) -> P:
        raise NotImplementedError

    def targets(self, parsed: P) -> Sequence[str]:
        """What the key must be allowed to use (403 otherwise)."""
        return ()

    async def call(self, parsed: P, admitted: Admitted) -> R:
        raise NotImplementedError

    def spent(self, outcome: R) -> Spend | None:
        """What the call spent; None when the response settles it itself (a stream, at its end)."""
        return None

    def respond(self, outcome: R, admitted: Admitted) -> GatewayResponse:
        raise NotImplementedError

    def error(self, exc: GatewayError) -> GatewayResponse:
        return error_response(exc)


# -- The sequence ------------------------------------------------------------------------


async def authenticate(authorization: str | None, api_key: str | None = None) -> KeyInfo:
    try:
        info = await key_lookup(bearer_token(authorization, api_key))
    except KeyLookupUnavailable as exc:
        retry = str(exc.retry_after_s)
        raise GatewayError(
            503,
            f"API keys cannot be checked right now (the database is unavailable). Retry after {retry} s.",
            code="service_unavailable",
            headers={"retry-after": retry},
        ) from None
    if info is None:
        raise GatewayError(401, "Invalid API key: it is unknown or has been revoked.", code="invalid_api_key")
    if api_key_touch_due(api_key_id=info.id):
        # At most once a minute per key per process. A database that hangs holds the request
        # for GATEWAY_KEY_DB_TIMEOUT_S at most; the write then finishes in the background.
        task = asyncio.ensure_future(_touch(info))
        _touching.add(task)
        task.add_done_callback(_touching.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.shield(task), float(settings.ORCHESTRATOR.get("GATEWAY_KEY_DB_TIMEOUT_S", 3))
            )
    return info


_touching: set[asyncio.Task[None]] = set()


async def _touch(info: KeyInfo) -> None:
    try:
        await sync_to_async(api_key_touch)(api_key_id=info.id)
    except Exception:
        log.exception("gateway: could not update the last use of key %r", info.name)


def authorize(info: KeyInfo, target: str) -> None:
    if not info.allows(target):
        raise GatewayError(
            403,
            f"This API key may not use {target!r}. Allowed: {', '.join(sorted(info.allowed))}.",
            code="target_not_allowed",
            param="model",
        )


async def call_run(endpoint: Endpoint[P, R], parsed: P, *, info: KeyInfo) -> tuple[R, Admitted]:
    """Authorize the targets, admit (429 over a limit), call the engine (its errors become
    GatewayErrors). The caller settles `admitted` (`await admitted.settle()`) when it has
    answered: the spend is known then."""
    for target in endpoint.targets(parsed):
        authorize(info, target)
    admitted = Admitted(info=info, source=endpoint.source, endpoint=endpoint.endpoint)
    if endpoint.admits:
        admitted.admission = await limits_admit(info=info)
    try:
        outcome = await endpoint.call(parsed, admitted)
    except OrchestratorError as exc:
        await admitted.release()
        raise from_orchestrator_error(exc) from None
    except BaseException:
        await admitted.release()
        raise
    admitted.spend = endpoint.spent(outcome)
    return outcome, admitted


async def endpoint_serve(endpoint: Endpoint[Any, Any], request: GatewayRequest) -> GatewayResponse:
    """The whole sequence for one request; errors shaped by the endpoint. The spend settles
    right after the response is sent (the front runs `after` before the connection's next
    request)."""
    try:
        info = await authenticate(request.authorization, request.api_key)
        parsed = endpoint.parse(request)
        outcome, admitted = await call_run(endpoint, parsed, info=info)
        response = endpoint.respond(outcome, admitted)
    except GatewayError as exc:
        return endpoint.error(exc)
    if admitted.spend is not None:
        response.after = admitted.settle
    return response
