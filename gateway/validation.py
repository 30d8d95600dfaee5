"""Parse and validate an OpenAI chat-completions request body, naming the wrong field.

How messages map to the engine:
- `model: "<model name>"` and `model: "chain:<name>"`: the messages are passed as they are
  (`developer` becomes `system`; a list of text parts is joined with newlines).
- `model: "route:<task_type>"`: a route is a single-turn task. The content of the LAST
  `user` message is the task content; the route's prompt version is the system prompt and
  its processors, selection and chain apply. Earlier messages (and any system message) are
  not sent.

Sampling and format fields (top_p, stop, seed, presence_penalty, frequency_penalty,
response_format, user) are validated by `routing.sampling.sampling_options` — the same
checks as the Python API's — and passed to the engine as one SamplingOptions; each provider
kind sends what it can honour (docs/gateway.md, "Parameters"). Other fields we do not act on
(logprobs, metadata, …) are accepted and ignored, as OpenAI-compatible servers commonly do;
features we cannot honour (tools, n > 1, non-text content) are refused with a 400 rather
than silently dropped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from gateway.errors import GatewayError, invalid
from routing.errors import InvalidRequest
from routing.orchestrator import (
    NO_SAMPLING,
    SAMPLING_FIELDS,
    SamplingOptions,
    number_in_range,
    sampling_options,
)
from routing.orchestrator import type_name as _type_name

ROLES = ("system", "developer", "user", "assistant")
MAX_MESSAGES = 10_000


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    stream: bool = False
    include_usage: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    sampling: SamplingOptions = NO_SAMPLING

    @property
    def target_kind(self) -> str:
        if self.model.startswith("route:"):
            return "route"
        if self.model.startswith("chain:"):
            return "chain"
        return "model"

    @property
    def target_name(self) -> str:
        return self.model.split(":", 1)[1] if self.target_kind != "model" else self.model

    def last_user_content(self) -> str:
        for message in reversed(self.messages):
            if message["role"] == "user":
                return message["content"]
        raise invalid("A route needs a user message: its content is the task.", param="messages")


# A JSON escape of a UTF-16 surrogate (\ud800-\udfff): the only way a decoded body can hold
# text that cannot be encoded as UTF-8 (a lone one) — the body itself must be valid UTF-8.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _param(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def unencodable_text_check(value: Any) -> None:
    """400 naming the field when a string (or a key) in the decoded body cannot be encoded as
    UTF-8: a lone surrogate would otherwise reach the provider's SDK and fail there."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                param = _param(path) or None
                where = f"{param} contains" if param else "The request body contains"
                raise invalid(
                    f"{where} text that cannot be encoded as UTF-8: a lone surrogate "
                    f"(\\u{ord(item[exc.start]):04x}) at character {exc.start}.",
                    param=param,
                    code="invalid_encoding",
                ) from None
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, path))  # a bad key names the object that holds it
                stack.append((child, [*path, key]))
        elif isinstance(item, list):
            stack.extend((child, [*path, i]) for i, child in enumerate(item))


def json_parse(body: bytes) -> Any:
    if not body:
        raise invalid("The request body is empty; send a JSON object.", code="invalid_json")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid(
            f"The request body is not valid UTF-8 (byte {exc.start}).", code="invalid_encoding"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise invalid(
            f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}.",
            code="invalid_json",
        ) from None
    except RecursionError:
        raise invalid("The request body is nested too deeply.", code="invalid_json") from None
    body_text_check(body, data)
    return data


def body_text_check(body: bytes, data: Any) -> None:
    """`unencodable_text_check` on a decoded JSON body, skipped (no walk) when the raw body
    holds no surrogate escape."""
    if _SURROGATE_ESCAPE.search(body):
        unencodable_text_check(data)


def _wrong_type(param: str, expected: str, value: Any) -> GatewayError:
    return invalid(f"{param} must be {expected}, not {_type_name(value)}.", param=param, code="invalid_type")


def _content_text(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            p = f"{param}[{j}]"
            if not isinstance(part, dict):
                raise _wrong_type(p, "an object", part)
            kind = part.get("type")
            if kind != "text":
                raise invalid(
                    f"{p}.type must be 'text' (only text content is supported), got {kind!r}.",
                    param=f"{p}.type",
                    code="unsupported_content",
                )
            text = part.get("text")
            if not isinstance(text, str):
                raise _wrong_type(f"{p}.text", "a string", text)
            texts.append(text)
        return "\n".join(texts)
    raise _wrong_type(param, "a string or an array of text parts", content)


def _number(data: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    try:
        return number_in_range(name, value, low, high)
    except InvalidRequest as exc:
        raise invalid(exc.message, param=exc.param, code=exc.code) from None


def _positive_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(name, "an integer", value)
    if value < 1 or value > 10_000_000:
        raise invalid(f"{name} must be a positive integer, got {value}.", param=name, code="out_of_range")
    return value


def _bool(data: dict[str, Any], name: str, param: str | None = None) -> bool:
    value = data.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _wrong_type(param or name, "a boolean", value)
    return value


def chat_request_parse(data: Any) -> ChatRequest:
    if not isinstance(data, dict):
        raise invalid(f"The request body must be a JSON object, not {_type_name(data)}.", code="invalid_type")
    model = data.get("model")
    if model is None:
        raise invalid(
            "model is required: a model name, 'route:<task_type>' or 'chain:<name>'.", param="model"
        )
    if not isinstance(model, str):
        raise _wrong_type("model", "a string", model)
    model = model.strip()
    if not model or model in ("route:", "chain:") or len(model) > 200:
        raise invalid("model must be a model name, 'route:<task_type>' or 'chain:<name>'.", param="model")

    raw_messages = data.get("messages")
    if raw_messages is None:
        raise invalid("messages is required: an array of {role, content} objects.", param="messages")
    if not isinstance(raw_messages, list):
        raise _wrong_type("messages", "an array", raw_messages)
    if not raw_messages:
        raise invalid("messages must contain at least one message.", param="messages")
    if len(raw_messages) > MAX_MESSAGES:
        raise invalid(f"messages may hold at most {MAX_MESSAGES} messages.", param="messages")
    messages: list[dict[str, str]] = []
    for i, message in enumerate(raw_messages):
        p = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _wrong_type(p, "an object", message)
        role = message.get("role")
        if role is None:
            raise invalid(f"{p}.role is required.", param=f"{p}.role")
        if role in ("tool", "function"):
            raise invalid(
                f"{p}.role {role!r} is not supported: the gateway does not support tool calls.",
                param=f"{p}.role",
                code="unsupported_role",
            )
        if role not in ROLES:
            raise invalid(
                f"{p}.role must be one of {', '.join(ROLES)}; got {role!r}.",
                param=f"{p}.role",
                code="invalid_role",
            )
        content = message.get("content")
        if content is None:
            raise invalid(f"{p}.content is required.", param=f"{p}.content")
        messages.append(
            {
                "role": "system" if role == "developer" else role,
                "content": _content_text(content, f"{p}.content"),
            }
        )

    for unsupported in ("tools", "functions", "tool_choice", "function_call"):
        if data.get(unsupported) not in (None, [], "none"):
            raise invalid(
                f"{unsupported} is not supported by the gateway.",
                param=unsupported,
                code="unsupported_parameter",
            )
    n = data.get("n")
    if n is not None and n != 1:
        raise invalid("n must be 1: the gateway returns one choice.", param="n", code="unsupported_parameter")

    stream = _bool(data, "stream")
    include_usage = False
    options = data.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _wrong_type("stream_options", "an object", options)
        if not stream:
            raise invalid("stream_options is only allowed when stream is true.", param="stream_options")
        include_usage = _bool(options, "include_usage", "stream_options.include_usage")

    max_tokens = _positive_int(data, "max_completion_tokens") or _positive_int(data, "max_tokens")
    sampling = NO_SAMPLING
    if not SAMPLING_FIELDS.isdisjoint(data):
        try:
            sampling = sampling_options(data)
        except InvalidRequest as exc:
            raise invalid(exc.message, param=exc.param, code=exc.code) from None
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        temperature=_number(data, "temperature", 0, 2),
        max_tokens=max_tokens,
        sampling=sampling,
    )
