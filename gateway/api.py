"""The native API at /api/v1/, mirroring the Python API (`routing.orchestrator`).

OpenAPI schema at /api/v1/openapi.json, docs at /api/v1/docs (Swagger UI from the assets
bundled in django-ninja, served from our static files: no CDN). Same bearer keys, limits,
budgets and error shape as /v1/.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, Literal

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

import routing.orchestrator as orchestrator
from gateway import chat
from gateway.errors import GatewayError, from_orchestrator_error
from gateway.keys import KeyInfo
from gateway.limits import limits_account, limits_admit
from routing.engine.types import AttemptInfo, ConsensusResult, Result
from routing.errors import InvalidRequest, OrchestratorError
from routing.sampling import SAMPLING_FIELDS, SEED_RANGE, sampling_options

log = logging.getLogger("gateway")


class BearerKey(HttpBearer):
    """`Authorization: Bearer ork-…` (the same keys as /v1/)."""

    async def __call__(self, request: HttpRequest) -> KeyInfo:  # type: ignore[override]
        return await chat.authenticate(request.headers.get("authorization"))

    def authenticate(self, request: HttpRequest, token: str) -> Any:  # pragma: no cover - unused
        return None


api = NinjaAPI(
    title="Orchestrator API",
    version="1",
    description=(
        "Route, consensus and parallel calls through Orchestrator. Authenticate with an API key: "
        "`Authorization: Bearer ork-…`. Errors use OpenAI's shape: "
        '`{"error": {"message", "type", "param", "code"}}`. The OpenAI-compatible endpoints '
        "are `POST /v1/chat/completions` and `GET /v1/models` (see docs/gateway.md)."
    ),
    auth=BearerKey(),
    urls_namespace="gateway_api",
    # The endpoints take bearer keys; the docs page and schema are pages like any other: login.
    docs_decorator=login_required,
)


# -- Errors in OpenAI's shape ------------------------------------------------------------


def _respond(exc: GatewayError) -> HttpResponse:
    response = HttpResponse(exc.body(), status=exc.status, content_type="application/json")
    for name, value in exc.headers.items():
        response[name] = value
    return response


@api.exception_handler(GatewayError)
def _gateway_error(request: HttpRequest, exc: GatewayError) -> HttpResponse:
    return _respond(exc)


@api.exception_handler(OrchestratorError)
def _engine_error(request: HttpRequest, exc: OrchestratorError) -> HttpResponse:
    return _respond(from_orchestrator_error(exc))


def _loc_param(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "payload", "path", "query")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    first = exc.errors[0] if exc.errors else {}
    param = _loc_param(first.get("loc", ())) or None
    message = first.get("msg", "Invalid request.")
    if param:
        message = f"{param}: {message}"
    return _respond(GatewayError(400, message, code="invalid_request", param=param))


@api.exception_handler(AuthenticationError)
def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _respond(
        GatewayError(401, "Missing API key: send 'Authorization: Bearer ork-…'.", code="missing_api_key")
    )


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _respond(GatewayError(exc.status_code, str(exc), code="invalid_request"))


@api.exception_handler(Exception)
def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("native API: unexpected error")
    return _respond(GatewayError(500, "Internal error; it has been logged.", code="internal_error"))


# -- Schemas -----------------------------------------------------------------------------


class Message(Schema):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=2_000_000)


class ResponseFormat(Schema):
    type: Literal["text", "json_object", "json_schema"]
    json_schema_: dict[str, Any] | None = Field(
        None,
        alias="json_schema",
        description='With type json_schema (required then): {"name", "schema"?, "strict"?, "description"?}, '
        "as OpenAI takes it.",
    )


class CallOptions(Schema):
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=10_000_000)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: str | list[str] | None = Field(
        None, description="A stop sequence or up to 4; the answer ends before the first one."
    )
    seed: int | None = Field(None, ge=SEED_RANGE[0], le=SEED_RANGE[1])
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    response_format: ResponseFormat | None = Field(
        None, description="json_object: answer a JSON object; json_schema: one that fits the schema."
    )
    user: str | None = Field(None, description="The end user's id, for the provider's abuse monitoring.")


class RouteIn(CallOptions):
    content: str = Field(
        ..., min_length=1, description="The task content; the route's prompt is the system prompt."
    )


class Attempt(Schema):
    model: str
    attempt: int
    status: str
    error_class: str = ""
    error: str = ""
    http_status: int | None = None
    latency_ms: float | None = None
    chain_step: int | None = None


class UsageOut(Schema):
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0


class ResultOut(Schema):
    output: str
    model: str
    trace_id: str
    cost_usd: Decimal | None = Field(None, description="Empty when the price is unknown.")
    latency_ms: float
    ttft_ms: float | None = None
    finish_reason: str | None = None
    usage: UsageOut
    attempts: list[Attempt]
    prompt_version_id: int | None = None
    simulated: bool = False


class ConsensusIn(CallOptions):
    content: str | None = Field(None, description="A user message; or give `messages`.")
    messages: list[Message] | None = None
    models: list[str] = Field(..., min_length=1, max_length=16)
    aggregator: str = Field("majority", description="How answers are combined, e.g. majority or judge.")
    judge_model: str | None = None


class MemberOut(Schema):
    model: str
    status: str
    output: str | None = None
    error: str = ""
    cost_usd: Decimal | None = None


class ConsensusOut(Schema):
    output: str
    model: str | None
    trace_id: str
    aggregator: str
    explanation: str
    members: list[MemberOut]
    votes: dict[str, int]
    judge: ResultOut | None = None
    cost_usd: Decimal | None = None


class TaskIn(Schema):
    task_type: str | None = Field(None, description="Run a route: give `task_type` and `content`.")
    content: str | None = None
    model: str | None = Field(None, description="Or a model with `messages` (or `content`).")
    chain: str | None = Field(None, description="Or a fallback chain with `messages` (or `content`).")
    messages: list[Message] | None = None


class ParallelIn(CallOptions):
    tasks: list[TaskIn] = Field(..., min_length=1, max_length=200)
    concurrency: int = Field(8, ge=1, le=64)


class ParallelItem(Schema):
    ok: bool
    result: ResultOut | None = None
    error: dict[str, Any] | None = None


class ParallelOut(Schema):
    results: list[ParallelItem]


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


def _options(payload: CallOptions, info: KeyInfo) -> dict[str, Any]:
    """The engine's keyword arguments; the sampling fields validated (400 naming the field)."""
    kwargs: dict[str, Any] = {"source": "api", "api_key_id": info.id}
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


def _messages(messages: list[Message] | None, content: str | None, param: str) -> list[dict[str, str]]:
    if messages:
        return [{"role": m.role, "content": m.content} for m in messages]
    if content:
        return [{"role": "user", "content": content}]
    raise GatewayError(400, f"{param}: give `messages` or `content`.", code="invalid_request", param=param)


def _authorize_all(info: KeyInfo, targets: list[str]) -> None:
    for target in targets:
        chat.authorize(info, target)


def _headers(response: HttpResponse, trace_id: str, attempts: int, cost: Decimal | None) -> None:
    response["x-orchestrator-trace-id"] = trace_id
    response["x-orchestrator-attempts"] = str(attempts)
    response["x-orchestrator-cost-usd"] = chat.cost_text(cost)


def _spent(results: list[Result]) -> tuple[int, Decimal | None]:
    tokens = sum(r.usage.input_tokens + r.usage.output_tokens for r in results)
    costs = [r.cost_usd for r in results if r.cost_usd is not None]
    return tokens, (sum(costs, Decimal(0)) if costs else None)


# -- Endpoints ---------------------------------------------------------------------------

_ERRORS = {400: dict, 401: dict, 403: dict, 404: dict, 429: dict, 502: dict, 503: dict, 504: dict}


@api.post("/route/{task_type}", response={200: ResultOut, **_ERRORS}, summary="Run a task route")
async def route(request: HttpRequest, response: HttpResponse, task_type: str, payload: RouteIn) -> Any:
    """Like `orchestrator.route(task_type, content)`: the route's prompt version, processors,
    model selection and fallback chain apply."""
    info: KeyInfo = request.auth  # type: ignore[attr-defined]
    chat.authorize(info, f"route:{task_type}")
    options = _options(payload, info)
    admission = await limits_admit(info=info)
    result = await orchestrator.aroute(task_type, payload.content, **options)
    tokens, cost = _spent([result])
    await limits_account(info=info, admission=admission, tokens=tokens, cost_usd=cost)
    _headers(response, result.trace_id, max(1, len(result.attempts)), result.cost_usd)
    return _result(result)


@api.post("/consensus", response={200: ConsensusOut, **_ERRORS}, summary="Ask several models and combine")
async def consensus(request: HttpRequest, response: HttpResponse, payload: ConsensusIn) -> Any:
    """Like `orchestrator.consensus(messages, models=[…], aggregator=…)`."""
    info: KeyInfo = request.auth  # type: ignore[attr-defined]
    _authorize_all(info, payload.models + ([payload.judge_model] if payload.judge_model else []))
    messages = _messages(payload.messages, payload.content, "messages")
    options = _options(payload, info)
    admission = await limits_admit(info=info)
    outcome: ConsensusResult = await orchestrator.aconsensus(
        messages,
        models=payload.models,
        aggregator=payload.aggregator,
        judge_model=payload.judge_model,
        **options,
    )
    results = [m.result for m in outcome.members if m.result is not None]
    if outcome.judge is not None:
        results.append(outcome.judge)
    tokens, cost = _spent(results)
    await limits_account(info=info, admission=admission, tokens=tokens, cost_usd=outcome.cost_usd or cost)
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


@api.post("/parallel", response={200: ParallelOut, **_ERRORS}, summary="Run several tasks concurrently")
async def parallel(request: HttpRequest, response: HttpResponse, payload: ParallelIn) -> Any:
    """Like `orchestrator.execute_parallel(tasks, concurrency=…)`: one result or error per task,
    in order; one task failing does not fail the others."""
    info: KeyInfo = request.auth  # type: ignore[attr-defined]
    tasks = []
    for i, t in enumerate(payload.tasks):
        spec, target = _task(t, i)
        chat.authorize(info, target)
        tasks.append(spec)
    options = _options(payload, info)
    admission = await limits_admit(info=info)
    outcomes = await orchestrator.aexecute_parallel(tasks, concurrency=payload.concurrency, **options)
    items: list[dict[str, Any]] = []
    done: list[Result] = []
    for outcome in outcomes:
        if isinstance(outcome, Result):
            done.append(outcome)
            items.append({"ok": True, "result": _result(outcome)})
        elif isinstance(outcome, OrchestratorError):
            err = from_orchestrator_error(outcome)
            items.append({"ok": False, "error": {"status": err.status, **err.to_dict()["error"]}})
        else:  # pragma: no cover - the engine returns only the two kinds
            items.append({"ok": False, "error": {"status": 500, "message": str(outcome)}})
    tokens, cost = _spent(done)
    await limits_account(info=info, admission=admission, tokens=tokens, cost_usd=cost)
    return {"results": items}


def urls() -> tuple[list[Any], str, str]:
    """The API's URL patterns, open to requests without a session (keys are the gate)."""
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback.login_required = False  # type: ignore[union-attr]
    return patterns, app_name, namespace
