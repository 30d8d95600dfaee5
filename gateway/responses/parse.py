"""Parse and validate a Responses API request body into the chat engine's inputs, naming the
wrong field as the Responses API names it (`input[2].call_id`, `tools[0].name`, `text.format`).

`input` becomes canonical messages (gateway/responses/items.py). `instructions` goes first as a
system message (never stored: OpenAI does not carry a previous response's instructions over
either). Function tools, `tool_choice`, `parallel_tool_calls` and `reasoning.effort` become
`ChatOptions`; `text.format`, `top_p` and `user` become `SamplingOptions`; `max_output_tokens`
and `temperature` are chat's. The checks underneath are the chat endpoint's (`tools_parse`,
`chat_options`, `sampling_options`), so every provider kind gets what it gets from a chat
completion, fallbacks included. `metadata`, `truncation` and `text.verbosity` are echoed, not
acted on; `include`, `service_tier`, `prompt_cache_key` and `safety_identifier` are accepted
and ignored.

Built-in tools (web search, file search, computer use, code interpreter, image generation,
MCP, …) and the fields that need OpenAI's own servers (`background`, `conversation`,
`prompt`) are 400s naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayError, invalid
from gateway.responses.items import input_parse, renamed, wrong_type
from gateway.validation import ChatRequest, model_field_parse
from routing.errors import InvalidRequest
from routing.messages import (
    ParsedMessages,
    chat_options,
    tool_choice_parse,
    tools_parse,
)
from routing.orchestrator import number_in_range, sampling_options
from routing.orchestrator import type_name as _type_name

METADATA_MAX_KEYS = 16
# Fields that need OpenAI's own servers: refused when set, naming the field.
UNSUPPORTED = {
    "background": "background responses are not supported: send the request and wait, or stream it",
    "conversation": "conversations are not supported: continue with previous_response_id instead",
    "prompt": "prompt templates are not supported: send instructions and input",
    "max_tool_calls": "max_tool_calls applies to built-in tools, which the gateway does not run",
    "top_logprobs": "top_logprobs is not supported on /v1/responses: use /v1/chat/completions with logprobs",
}


@dataclass
class ResponsesRequest:
    """A parsed request: the chat request the engine gets (its messages without a previous
    response's conversation, which the endpoint prepends) and what the response echoes."""

    chat: ChatRequest
    input_messages: ParsedMessages  # this request's input, canonical, without the instructions
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool = True
    # call_ids of function_call_output items that answer a call of the previous response
    answers_previous: dict[str, int] = field(default_factory=dict)  # call_id -> input index
    echo: dict[str, Any] = field(default_factory=dict)  # the request's fields the response repeats


# -- tools, tool_choice, text, reasoning --------------------------------------------------


def _tools(raw: Any) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """The chat tools for `tools`, and the tools as the response echoes them."""
    if raw is None:
        return None, []
    if not isinstance(raw, list):
        raise wrong_type("tools", "an array of tools", raw)
    converted: list[dict[str, Any]] = []
    for i, tool in enumerate(raw):
        p = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise wrong_type(p, "an object", tool)
        kind = tool.get("type")
        if kind != "function":
            raise invalid(
                f"{p}.type {kind!r} is not supported: built-in tools (web search, file search, computer "
                "use, code interpreter, image generation, MCP, …) run inside OpenAI's servers; the "
                "gateway offers function tools only.",
                param=f"{p}.type",
                code="unsupported_tool",
            )
        spec = {
            k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None
        }
        converted.append({"type": "function", "function": spec})
    try:
        tools = tools_parse(converted, param="tools")
    except InvalidRequest as exc:
        raise renamed(exc, [(".function.", ".")]) from None
    echo = [
        {
            "type": "function",
            "name": t["function"]["name"],
            "description": t["function"].get("description"),
            "parameters": t["function"].get("parameters"),
            "strict": t["function"].get("strict"),
        }
        for t in tools or []
    ]
    return tools, echo


def _tool_choice(raw: Any, tools: list[dict[str, Any]] | None) -> Any:
    """The chat tool_choice for the Responses one ("none" | "auto" | "required" |
    {"type": "function", "name"})."""
    if raw is None or isinstance(raw, str):
        chat_form: Any = raw
    elif isinstance(raw, dict) and raw.get("type") == "function":
        chat_form = {"type": "function", "function": {"name": raw.get("name")}}
    elif isinstance(raw, dict):
        raise invalid(
            f"tool_choice.type {raw.get('type')!r} is not supported: choose 'none', 'auto', 'required' or "
            "{'type': 'function', 'name': …} (built-in tools are not run by the gateway).",
            param="tool_choice.type",
            code="unsupported_tool",
        )
    else:
        raise wrong_type("tool_choice", "a string or an object", raw)
    try:
        return tool_choice_parse(chat_form, tools=tools)
    except InvalidRequest as exc:
        raise renamed(exc, [(".function.name", ".name")]) from None


def _text_format(text: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The chat response_format for `text.format`, and `text` as the response echoes it."""
    if text is None:
        return None, {"format": {"type": "text"}}
    if not isinstance(text, dict):
        raise wrong_type("text", "an object", text)
    fmt = text.get("format")
    echo = {k: v for k, v in text.items() if k in ("verbosity",) and v is not None}
    if fmt is None:
        return None, {"format": {"type": "text"}, **echo}
    if not isinstance(fmt, dict):
        raise wrong_type("text.format", "an object", fmt)
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        response_format: dict[str, Any] = {"type": "json_schema", "json_schema": spec}
    else:
        response_format = {"type": kind}
    return response_format, {"format": fmt, **echo}


def _reasoning(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise wrong_type("reasoning", "an object", raw)
    effort = raw.get("effort")
    if effort is not None and not isinstance(effort, str):
        raise wrong_type("reasoning.effort", "a string", effort)
    return effort


# -- the request -------------------------------------------------------------------------


def _bool(data: dict[str, Any], name: str, default: bool) -> bool:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise wrong_type(name, "a boolean", value)
    return value


def _metadata(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise wrong_type("metadata", "an object of strings", raw)
    if len(raw) > METADATA_MAX_KEYS:
        raise invalid(
            f"metadata may hold at most {METADATA_MAX_KEYS} keys, got {len(raw)}.",
            param="metadata",
            code="invalid_value",
        )
    for key, value in raw.items():
        if len(key) > 64:
            raise invalid("metadata keys are at most 64 characters.", param="metadata", code="invalid_value")
        if not isinstance(value, str) or len(value) > 512:
            raise wrong_type(f"metadata.{key}", "a string of at most 512 characters", value)
    return dict(raw)


def _max_output_tokens(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type("max_output_tokens", "an integer", value)
    if value < 1 or value > 10_000_000:
        raise invalid(
            f"max_output_tokens must be a positive integer, got {value}.",
            param="max_output_tokens",
            code="out_of_range",
        )
    return value


def _model(data: dict[str, Any]) -> str:
    return model_field_parse(data)


def responses_request_parse(data: Any) -> ResponsesRequest:
    if not isinstance(data, dict):
        raise invalid(f"The request body must be a JSON object, not {_type_name(data)}.", code="invalid_type")
    model = _model(data)
    for name, why in UNSUPPORTED.items():
        if data.get(name) not in (None, False, 0):
            raise invalid(f"{name}: {why}.", param=name, code="unsupported_parameter")
    if data.get("input") is None:
        raise invalid("input is required: a string or an array of input items.", param="input")
    instructions = data.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise wrong_type("instructions", "a string", instructions)
    previous = data.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous.strip()):
        raise wrong_type("previous_response_id", "a response id", previous)
    input_messages, answers = input_parse(data["input"], continues=previous is not None)

    tools, tools_echo = _tools(data.get("tools"))
    tool_choice = _tool_choice(data.get("tool_choice"), tools)
    response_format, text_echo = _text_format(data.get("text"))
    effort = _reasoning(data.get("reasoning"))
    temperature = data.get("temperature")
    try:
        if temperature is not None:
            temperature = number_in_range("temperature", temperature, 0, 2)
        chat = chat_options(
            {
                "tools": tools,
                "tool_choice": tool_choice,
                "parallel_tool_calls": data.get("parallel_tool_calls"),
                "reasoning_effort": effort,
            }
        )
    except InvalidRequest as exc:
        raise renamed(exc, [("reasoning_effort", "reasoning.effort")]) from None
    try:
        sampling = sampling_options(
            {"top_p": data.get("top_p"), "user": data.get("user"), "response_format": response_format}
        )
    except InvalidRequest as exc:
        raise renamed(
            exc, [("response_format.json_schema", "text.format"), ("response_format", "text.format")]
        ) from None
    stream = _bool(data, "stream", False)
    store = _bool(data, "store", True)
    max_output_tokens = _max_output_tokens(data.get("max_output_tokens"))
    metadata = _metadata(data.get("metadata"))

    system = [{"role": "system", "content": instructions}] if instructions else []
    chat_request = ChatRequest(
        model=model,
        messages=ParsedMessages(system + input_messages),
        stream=stream,
        temperature=temperature,
        max_tokens=max_output_tokens,
        sampling=sampling,
        chat=chat,
    )
    if chat_request.target_kind == "route" and previous is None:  # else: the stored conversation has one
        try:
            chat_request.last_user_content()
        except GatewayError:
            raise invalid(
                "A route needs a user message in input: its content is the task.", param="input"
            ) from None
    return ResponsesRequest(
        chat=chat_request,
        input_messages=input_messages,
        instructions=instructions,
        previous_response_id=previous.strip() if previous else None,
        store=store,
        answers_previous=answers,
        echo={
            "instructions": instructions,
            "max_output_tokens": max_output_tokens,
            "metadata": metadata,
            "parallel_tool_calls": chat.parallel_tool_calls if chat.parallel_tool_calls is not None else True,
            "reasoning": {"effort": effort, "summary": None},
            "temperature": temperature,
            "text": text_echo,
            "tool_choice": data.get("tool_choice") or "auto",
            "tools": tools_echo,
            "top_p": sampling.top_p,
            "truncation": data.get("truncation") or "disabled",
            "user": sampling.user,
        },
    )
