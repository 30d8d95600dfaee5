"""Request and response schemas of the native API (the OpenAPI document is made from them)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from routing.orchestrator import SEED_RANGE

# Rules across fields, written into the OpenAPI document (JSON Schema 2020-12, as OpenAPI
# 3.1 takes it). The endpoints check the same rules at run time, with a 400 naming the field.
_MESSAGES_GIVEN: dict[str, Any] = {
    "required": ["messages"],
    "properties": {"messages": {"type": "array", "minItems": 1}},
}
_CONTENT_GIVEN: dict[str, Any] = {
    "required": ["content"],
    "properties": {"content": {"type": "string", "minLength": 1}},
}
MESSAGES_OR_CONTENT: dict[str, Any] = {"anyOf": [_MESSAGES_GIVEN, _CONTENT_GIVEN]}


def _named(field: str) -> dict[str, Any]:
    return {"required": [field], "properties": {field: {"type": "string", "minLength": 1}}}


# A parallel task: exactly one of task_type (with content), model or chain (each with
# messages or content).
ONE_TARGET: dict[str, Any] = {
    "oneOf": [
        {"allOf": [_named("task_type"), _CONTENT_GIVEN]},
        {"allOf": [_named("model"), MESSAGES_OR_CONTENT]},
        {"allOf": [_named("chain"), MESSAGES_OR_CONTENT]},
    ]
}

JSON_SCHEMA_WITH_ITS_TYPE: dict[str, Any] = {
    "if": {"required": ["type"], "properties": {"type": {"const": "json_schema"}}},
    "then": {"required": ["json_schema"], "properties": {"json_schema": {"type": "object"}}},
}

# Numbers: NaN and infinities are refused as "Input should be a finite number".
_FINITE = ConfigDict(allow_inf_nan=False)


class Message(Schema):
    """A chat message as OpenAI's chat completions take it (checked once more by
    `routing.messages.messages_parse`: image URLs, tool calls answered, …)."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = Field(
        None,
        description='Text, or parts: {"type": "text", "text"} and (user) '
        '{"type": "image_url", "image_url": {"url": "https://…" | "data:image/png;base64,…"}}. '
        "May be null for an assistant message with tool_calls.",
    )
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = Field(
        None, description='Assistant: [{"id", "type": "function", "function": {"name", "arguments"}}].'
    )
    tool_call_id: str | None = Field(None, description="Tool: the id of the call this answers.")


class ResponseFormat(Schema):
    model_config = ConfigDict(json_schema_extra=JSON_SCHEMA_WITH_ITS_TYPE)

    type: Literal["text", "json_object", "json_schema"]
    json_schema_: dict[str, Any] | None = Field(
        None,
        alias="json_schema",
        description='With type json_schema (required then): {"name", "schema"?, "strict"?, "description"?}, '
        "as OpenAI takes it.",
    )


class CallOptions(Schema):
    model_config = _FINITE

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
    model_config = ConfigDict(json_schema_extra=MESSAGES_OR_CONTENT)

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
    model_config = ConfigDict(json_schema_extra=ONE_TARGET)

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
