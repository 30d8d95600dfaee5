"""An Anthropic Messages request body → the chat request the engine takes (`ChatRequest`, as
gateway/chat.py serves it), each problem a 400 naming the field.

The messages, tools and tool choice are translated by routing/messages/anthropic.py into the
canonical form, so any provider kind answers. The other fields:
- `model`: a model, `route:<task_type>` or `chain:<name>`, as for chat;
- `max_tokens`: required (a positive integer), except to count tokens;
- `temperature` (0–1, Anthropic's range, passed on as it is), `top_p`, `stop_sequences` (at most 4,
  as for chat's `stop`), `metadata.user_id` (the sampling options' `user`), `stream` (the
  SDK's `create` no longer offers temperature and top_p: `extra_body` sends them);
- `output_config.format` (`{"type": "json_schema", "schema"}`) → a json_schema response format,
  `output_config.effort` low / medium / high → reasoning_effort (other efforts are refused);
- refused with a 400 naming them, never dropped: `top_k` (the engine's sampling options do
  not carry it), `thinking` unless disabled, `mcp_servers` and `container` (tools Anthropic
  runs itself);
- `anthropic-version` / `anthropic-beta` are headers the gateway does not read; other body
  fields (`service_tier`, …) are accepted and ignored, as chat ignores fields it does not act on.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError, invalid
from gateway.validation import ChatRequest, model_field_parse
from routing.errors import InvalidRequest
from routing.messages import NO_CHAT_OPTIONS, ChatOptions
from routing.messages.anthropic import (
    anthropic_messages_parse,
    anthropic_tool_choice_parse,
    anthropic_tools_parse,
)
from routing.orchestrator import NO_SAMPLING, number_in_range, sampling_options, type_name

# Sampling options: our name → the field of the Anthropic request it came from.
_SAMPLING_PARAMS = (("stop", "stop_sequences"), ("user", "metadata.user_id"), ("top_p", "top_p"))
EFFORTS = ("low", "medium", "high")
REFUSED = {
    "top_k": "top_k is not supported: the gateway's models take temperature and top_p (any model may answer).",
    "mcp_servers": "mcp_servers is not supported: MCP tools run inside Anthropic's API; send custom tools.",
    "container": "container is not supported: code execution runs inside Anthropic's API.",
}


def _from_engine(exc: InvalidRequest, renames: tuple[tuple[str, str], ...] = ()) -> GatewayError:
    param, message = exc.param, exc.message
    for ours, theirs in renames:
        if param and (param == ours or param.startswith(f"{ours}[")):
            param = theirs + param[len(ours) :]
            message = message.replace(ours, theirs, 1) if message.startswith(ours) else message
    return invalid(message, param=param, code=exc.code)


def _wrong_type(param: str, expected: str, value: Any) -> GatewayError:
    return invalid(f"{param} must be {expected}, not {type_name(value)}.", param=param, code="invalid_type")


def _model(data: dict[str, Any]) -> str:
    return model_field_parse(data)


def _max_tokens(data: dict[str, Any], *, required: bool) -> int | None:
    value = data.get("max_tokens")
    if value is None:
        if required:
            raise invalid("max_tokens is required: the most tokens the answer may have.", param="max_tokens")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type("max_tokens", "an integer", value)
    if value < 1 or value > 10_000_000:
        raise invalid(
            f"max_tokens must be a positive integer, got {value}.", param="max_tokens", code="out_of_range"
        )
    return value


def _output_config(data: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(response_format, reasoning_effort) from output_config."""
    config = data.get("output_config")
    if config is None:
        return None, None
    if not isinstance(config, dict):
        raise _wrong_type("output_config", "an object", config)
    response_format = None
    fmt = config.get("format")
    if fmt is not None:
        if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
            raise invalid(
                "output_config.format must be {'type': 'json_schema', 'schema': {...}}.",
                param="output_config.format",
                code="invalid_value",
            )
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise _wrong_type("output_config.format.schema", "an object", schema)
        response_format = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    effort = config.get("effort")
    if effort is not None and effort not in EFFORTS:
        raise invalid(
            f"output_config.effort must be one of {', '.join(EFFORTS)} here (any model may answer), not {effort!r}.",
            param="output_config.effort",
            code="unsupported_parameter",
        )
    return response_format, effort


def _sampling_values(data: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if data.get("stop_sequences") is not None:
        stops = data["stop_sequences"]
        if not isinstance(stops, list):
            raise _wrong_type("stop_sequences", "an array of strings", stops)
        values["stop"] = stops
    if data.get("top_p") is not None:
        values["top_p"] = data["top_p"]
    metadata = data.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise _wrong_type("metadata", "an object", metadata)
        if metadata.get("user_id") is not None:
            values["user"] = metadata["user_id"]
    return values


def _refusals(data: dict[str, Any]) -> None:
    for name, message in REFUSED.items():
        if data.get(name) is not None:
            raise invalid(message, param=name, code="unsupported_parameter")
    thinking = data.get("thinking")
    if thinking is not None and not (isinstance(thinking, dict) and thinking.get("type") == "disabled"):
        raise invalid(
            "thinking is not supported through /v1/messages (any model may answer): leave it out.",
            param="thinking",
            code="unsupported_parameter",
        )


def messages_request_parse(data: Any, *, count_only: bool = False) -> ChatRequest:
    """The chat request for an Anthropic Messages body (`count_only`: for count_tokens, where
    max_tokens is not required)."""
    if not isinstance(data, dict):
        raise invalid(f"The request body must be a JSON object, not {type_name(data)}.", code="invalid_type")
    model = _model(data)
    max_tokens = _max_tokens(data, required=not count_only)
    if data.get("messages") is None:
        raise invalid("messages is required: an array of {role, content} objects.", param="messages")
    _refusals(data)
    try:
        messages = anthropic_messages_parse(data["messages"], system=data.get("system"))
        tools = anthropic_tools_parse(data.get("tools"))
        choice, parallel = anthropic_tool_choice_parse(data.get("tool_choice"), tools=tools)
    except InvalidRequest as exc:
        raise _from_engine(exc) from None
    response_format, effort = _output_config(data)
    chat = (
        ChatOptions(tools=tools, tool_choice=choice, parallel_tool_calls=parallel, reasoning_effort=effort)
        if tools or choice is not None or parallel is not None or effort is not None
        else NO_CHAT_OPTIONS
    )
    values = _sampling_values(data)
    if response_format is not None:
        values["response_format"] = response_format
    try:
        sampling = sampling_options(values) if values else NO_SAMPLING
        temperature = data.get("temperature")
        temperature = None if temperature is None else number_in_range("temperature", temperature, 0, 1)
    except InvalidRequest as exc:
        raise _from_engine(exc, _SAMPLING_PARAMS) from None
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean", stream)
    req = ChatRequest(
        model=model,
        messages=messages,
        stream=bool(stream) and not count_only,
        temperature=temperature,
        max_tokens=max_tokens,
        sampling=sampling,
        chat=chat,
    )
    if req.target_kind == "route":
        req.last_user_content()  # a 400 before anything is counted
    return req
