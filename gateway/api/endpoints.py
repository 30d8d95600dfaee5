"""The native API's endpoints: each an adapter over the gateway's sequence (gateway/calls.py)
whose request django-ninja has already authenticated and parsed."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse

from gateway.api.app import api
from gateway.api.schemas import (
    CallOptions,
    ConsensusIn,
    ConsensusOut,
    Message,
    ParallelIn,
    ParallelOut,
    ResultOut,
    RouteIn,
    TaskIn,
)
from gateway.calls import Admitted, Endpoint, Spend, call_run
from gateway.errors import GatewayError, from_orchestrator_error
from gateway.http import cost_text
from gateway.keys import KeyInfo
from routing.errors import InvalidRequest, OrchestratorError
from routing.messages import Messages, messages_parse
from routing.orchestrator import (
    SAMPLING_FIELDS,
    AttemptInfo,
    ConsensusResult,
    Result,
    aconsensus,
    aexecute_parallel,
    aroute,
    sampling_options,
)

_ERRORS = {400: dict, 401: dict, 403: dict, 404: dict, 429: dict, 502: dict, 503: dict, 504: dict}

# -- Helpers -----------------------------------------------------------------------------


def _attempt(a: AttemptInfo) -> dict[str, Any]:
    return {k: v for k, v in a.to_dict().items() if k != "record_id"}


def _result(r: Result) -> dict[str, Any]:
    return {
        "output": r.text,
        "model": r.model,
        "trace_id": r.trace_id,
        "cost_usd": r.cost_usd,
        "latency_ms": r.latency_ms,
        "ttft_ms": r.ttft_ms,
        "finish_reason": r.finish_reason,
        "usage": {
            "input_tokens": r.usage.input_tokens,
            "output_tokens": r.usage.output_tokens,
            "cached_tokens": r.usage.cached_tokens,
        },
        "attempts": [_attempt(a) for a in r.attempts],
        "prompt_version_id": r.prompt_version_id,
        "simulated": r.simulated,
    }


def _options(payload: CallOptions) -> dict[str, Any]:
    """The engine's call options; the sampling fields validated (400 naming the field)."""
    kwargs: dict[str, Any] = {}
    if payload.temperature is not None:
        kwargs["temperature"] = payload.temperature
    if payload.max_tokens is not None:
        kwargs["max_tokens"] = payload.max_tokens
    values = payload.model_dump(include=set(SAMPLING_FIELDS), exclude_none=True, by_alias=True)
    if values:
        try:
            kwargs["sampling"] = sampling_options(values)
        except InvalidRequest as exc:
            raise GatewayError(400, exc.message, code=exc.code, param=exc.param) from None
    return kwargs


def _messages(messages: list[Message] | None, content: str | None, param: str) -> Messages:
    """The canonical messages (`routing.messages`), or a 400 naming the field."""
    if messages:
        try:
            return messages_parse([m.model_dump(exclude_none=True) for m in messages], param=param)
        except InvalidRequest as exc:
            raise GatewayError(400, exc.message, code=exc.code, param=exc.param) from None
    if content:
        return [{"role": "user", "content": content}]
    raise GatewayError(400, f"{param}: give `messages` or `content`.", code="invalid_request", param=param)


def _headers(response: HttpResponse, trace_id: str, attempts: int, cost: Decimal | None) -> None:
    response["x-orchestrator-trace-id"] = trace_id
    response["x-orchestrator-attempts"] = str(attempts)
    response["x-orchestrator-cost-usd"] = cost_text(cost)


async def _serve(endpoint: Endpoint[Any, Any], parsed: Any, request: HttpRequest) -> Any:
    """The sequence from authorize on (ninja authenticated and parsed); the spend settles
    before the answer, which is the view's return value."""
    info: KeyInfo = request.auth  # type: ignore[attr-defined]
    outcome, admitted = await call_run(endpoint, parsed, info=info)
    await admitted.settle()
    return outcome


# -- POST /route/{task_type} -------------------------------------------------------------


@dataclass
class RouteCall:
    task_type: str
    content: str
    options: dict[str, Any]


class RouteEndpoint(Endpoint[RouteCall, Result]):
    source = "api"
    endpoint = "api.route"

    def targets(self, parsed: RouteCall) -> list[str]:
        return [f"route:{parsed.task_type}"]

    async def call(self, parsed: RouteCall, admitted: Admitted) -> Result:
        return await aroute(parsed.task_type, parsed.content, **admitted.engine_kwargs(), **parsed.options)

    def spent(self, outcome: Result) -> Spend:
        return Spend.of([outcome])


ROUTE = RouteEndpoint()


@api.post("/route/{task_type}", response={200: ResultOut, **_ERRORS}, summary="Run a task route")
async def route(request: HttpRequest, response: HttpResponse, task_type: str, payload: RouteIn) -> Any:
    """Like `orchestrator.route(task_type, content)`: the route's prompt version, processors,
    model selection and fallback chain apply."""
    result: Result = await _serve(ROUTE, RouteCall(task_type, payload.content, _options(payload)), request)
    _headers(response, result.trace_id, max(1, len(result.attempts)), result.cost_usd)
    return _result(result)


# -- POST /consensus ---------------------------------------------------------------------


@dataclass
class ConsensusCall:
    payload: ConsensusIn
    messages: Messages
    options: dict[str, Any]


class ConsensusEndpoint(Endpoint[ConsensusCall, ConsensusResult]):
    source = "api"
    endpoint = "api.consensus"

    def targets(self, parsed: ConsensusCall) -> list[str]:
        p = parsed.payload
        return p.models + ([p.judge_model] if p.judge_model else [])

    async def call(self, parsed: ConsensusCall, admitted: Admitted) -> ConsensusResult:
        p = parsed.payload
        return await aconsensus(
            parsed.messages,
            models=p.models,
            aggregator=p.aggregator,
            judge_model=p.judge_model,
            **admitted.engine_kwargs(),
            **parsed.options,
        )

    def spent(self, outcome: ConsensusResult) -> Spend:
        results = [m.result for m in outcome.members if m.result is not None]
        if outcome.judge is not None:
            results.append(outcome.judge)
        return Spend.of(results, cost_usd=outcome.cost_usd or None)


CONSENSUS = ConsensusEndpoint()


@api.post("/consensus", response={200: ConsensusOut, **_ERRORS}, summary="Ask several models and combine")
async def consensus(request: HttpRequest, response: HttpResponse, payload: ConsensusIn) -> Any:
    """Like `orchestrator.consensus(messages, models=[…], aggregator=…)`."""
    parsed = ConsensusCall(
        payload, _messages(payload.messages, payload.content, "messages"), _options(payload)
    )
    outcome: ConsensusResult = await _serve(CONSENSUS, parsed, request)
    _headers(response, outcome.trace_id, len(outcome.members), outcome.cost_usd)
    return {
        "output": outcome.text,
        "model": outcome.model,
        "trace_id": outcome.trace_id,
        "aggregator": outcome.aggregator,
        "explanation": outcome.explanation,
        "members": [
            {
                "model": m.model,
                "status": m.status,
                "output": m.result.text if m.result else None,
                "error": m.error,
                "cost_usd": m.result.cost_usd if m.result else None,
            }
            for m in outcome.members
        ],
        "votes": outcome.votes,
        "judge": _result(outcome.judge) if outcome.judge else None,
        "cost_usd": outcome.cost_usd,
    }


# -- POST /parallel ----------------------------------------------------------------------


def _task(task: TaskIn, index: int) -> tuple[dict[str, Any], str]:
    param = f"tasks[{index}]"
    chosen = [name for name in ("task_type", "model", "chain") if getattr(task, name)]
    if len(chosen) != 1:
        raise GatewayError(
            400,
            f"{param}: give exactly one of task_type, model or chain.",
            code="invalid_request",
            param=param,
        )
    if task.task_type:
        if not task.content:
            raise GatewayError(
                400,
                f"{param}.content is required for a route.",
                code="invalid_request",
                param=f"{param}.content",
            )
        return {"task_type": task.task_type, "content": task.content}, f"route:{task.task_type}"
    messages = _messages(task.messages, task.content, f"{param}.messages")
    if task.model:
        return {"model": task.model, "messages": messages}, task.model
    return {"chain": task.chain, "messages": messages}, f"chain:{task.chain}"


@dataclass
class ParallelCall:
    tasks: list[dict[str, Any]]
    targets: list[str]
    concurrency: int
    options: dict[str, Any]


class ParallelEndpoint(Endpoint[ParallelCall, list[Result | OrchestratorError]]):
    source = "api"
    endpoint = "api.parallel"

    def targets(self, parsed: ParallelCall) -> list[str]:
        return parsed.targets

    async def call(self, parsed: ParallelCall, admitted: Admitted) -> list[Result | OrchestratorError]:
        kwargs = {**admitted.engine_kwargs(), **parsed.options}
        kwargs.pop("trace_id")  # one trace per task
        return await aexecute_parallel(parsed.tasks, concurrency=parsed.concurrency, **kwargs)

    def spent(self, outcome: list[Result | OrchestratorError]) -> Spend:
        return Spend.of([r for r in outcome if isinstance(r, Result)])


PARALLEL = ParallelEndpoint()


@api.post("/parallel", response={200: ParallelOut, **_ERRORS}, summary="Run several tasks concurrently")
async def parallel(request: HttpRequest, response: HttpResponse, payload: ParallelIn) -> Any:
    """Like `orchestrator.execute_parallel(tasks, concurrency=…)`: one result or error per task,
    in order; one task failing does not fail the others."""
    specs = [_task(t, i) for i, t in enumerate(payload.tasks)]
    parsed = ParallelCall(
        tasks=[spec for spec, _ in specs],
        targets=[target for _, target in specs],
        concurrency=payload.concurrency,
        options=_options(payload),
    )
    outcomes: list[Result | OrchestratorError] = await _serve(PARALLEL, parsed, request)
    items: list[dict[str, Any]] = []
    for outcome in outcomes:
        if isinstance(outcome, Result):
            items.append({"ok": True, "result": _result(outcome)})
        elif isinstance(outcome, OrchestratorError):
            err = from_orchestrator_error(outcome)
            items.append({"ok": False, "error": {"status": err.status, **err.to_dict()["error"]}})
        else:  # pragma: no cover - the engine returns only the two kinds
            items.append({"ok": False, "error": {"status": 500, "message": str(outcome)}})
    return {"results": items}
