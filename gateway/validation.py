"""Parse and validate an OpenAI chat-completions request body, naming the wrong field.

Messages are parsed once into the canonical form every path uses (`routing.messages`:
OpenAI's chat shape; `developer` becomes `system`; text-only content becomes one string;
user image parts, assistant tool calls and tool results are kept and checked — an image URL
must be http(s) or a data URI of an image type within IMAGE_MAX_BYTES, a tool message must
answer a call made earlier). How they reach the engine:
- `model: "<model name>"` and `model: "chain:<name>"`: the whole conversation.
- `model: "route:<task_type>"`: the route's prompt version is the system prompt and its
  processors, selection and chain apply (see `route_messages` in gateway/chat.py).

Sampling and format fields (top_p, stop, seed, presence_penalty, frequency_penalty,
response_format, user) are validated by `routing.sampling.sampling_options`, the chat fields
(tools, tool_choice, parallel_tool_calls, n, logprobs, top_logprobs, reasoning_effort) by
`routing.messages.chat_options` — the same checks as the Python API's — and passed to the
engine as they are; each provider kind sends what it can honour and a model that cannot is
passed over with a recorded reason (docs/gateway.md, "Parameters"). Other fields we do not
act on (metadata, store, …) are accepted and ignored, as OpenAI-compatible servers commonly
do; the legacy `functions` / `function_call` are refused with a 400 pointing to `tools`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import GatewayError, invalid
from routing.errors import InvalidRequest
from routing.messages import (
    CHAT_OPTION_FIELDS,
    NO_CHAT_OPTIONS,
    ChatOptions,
    Messages,
    chat_options,
    last_user_text,
    messages_parse,
    text_check,
)
from routing.orchestrator import (
    NO_SAMPLING,
    SAMPLING_FIELDS,
    SamplingOptions,
    number_in_range,
    sampling_options,
)
from routing.orchestrator import type_name as _type_name


@dataclass
class ChatRequest:
    model: str
    messages: Messages  # canonical (routing.messages)
    stream: bool = False
    include_usage: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    sampling: SamplingOptions = NO_SAMPLING
    chat: ChatOptions = NO_CHAT_OPTIONS

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
        text = last_user_text(self.messages)
        if text is None:
            raise invalid("A route needs a user message: its content is the task.", param="messages")
        return text


# A JSON escape of a UTF-16 surrogate (\ud800-\udfff): the only way a decoded body can hold
# text that cannot be encoded as UTF-8 (a lone one) — the body itself must be valid UTF-8.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# A run of 19 digits: maybe an integer beyond 64 bits, which orjson reads as a float (json: exact).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def _param(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _from_engine(exc: InvalidRequest) -> GatewayError:
    return invalid(exc.message, param=exc.param, code=exc.code)


def unencodable_text_check(value: Any) -> None:
    """400 naming the field when a string (or a key) anywhere in the decoded body cannot be
    encoded as UTF-8 (`routing.messages.text_check`, as for messages): a lone surrogate would
    otherwise reach the provider's SDK and fail there."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            try:
                text_check(item, _param(path) or "The request body")
            except InvalidRequest as exc:
                exc.param = exc.param if path else None
                raise _from_engine(exc) from None
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, path))  # a bad key names the object that holds it
                stack.append((child, [*path, key]))
        elif isinstance(item, list):
            stack.extend((child, [*path, i]) for i, child in enumerate(item))


def json_parse(body: bytes) -> Any:
    """The decoded JSON body; a 400 saying what is wrong with it.

    orjson reads it first (~7 µs less for a small body): what it reads, json reads the same.
    Whatever it refuses (NaN and Infinity, which json takes; invalid UTF-8, a lone surrogate
    escape, bad JSON, deep nesting) and integers beyond 64 bits (orjson would make them floats)
    go through json as before, so json's acceptance and our messages are unchanged."""
    if not body:
        raise invalid("The request body is empty; send a JSON object.", code="invalid_json")
    if not _LONG_DIGITS.search(body):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            body_text_check(body, data)
            return data
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


def _number(data: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    try:
        return number_in_range(name, value, low, high)
    except InvalidRequest as exc:
        raise _from_engine(exc) from None


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


def model_field_parse(data: dict[str, Any]) -> str:
    """A request body's `model`: a model name, 'route:<task_type>' or 'chain:<name>' (every
    chat-shaped endpoint takes it alike)."""
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
    return model


def chat_request_parse(data: Any) -> ChatRequest:
    if not isinstance(data, dict):
        raise invalid(f"The request body must be a JSON object, not {_type_name(data)}.", code="invalid_type")
    model = model_field_parse(data)

    if data.get("messages") is None:
        raise invalid("messages is required: an array of {role, content} objects.", param="messages")
    for legacy, instead in (("functions", "tools"), ("function_call", "tool_choice")):
        if data.get(legacy) is not None:
            raise invalid(
                f"{legacy} (the deprecated functions API) is not supported: send {instead} instead.",
                param=legacy,
                code="unsupported_parameter",
            )
    try:
        messages = messages_parse(data["messages"])
        chat = NO_CHAT_OPTIONS if CHAT_OPTION_FIELDS.isdisjoint(data) else chat_options(data)
        sampling = NO_SAMPLING if SAMPLING_FIELDS.isdisjoint(data) else sampling_options(data)
    except InvalidRequest as exc:
        raise _from_engine(exc) from None

    stream = _bool(data, "stream")
    include_usage = False
    options = data.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise _wrong_type("stream_options", "an object", options)
        if not stream:
            raise invalid("stream_options is only allowed when stream is true.", param="stream_options")
        include_usage = _bool(options, "include_usage", "stream_options.include_usage")
    if stream and chat.n > 1:
        raise invalid(
            "n > 1 cannot be streamed by the gateway: ask for one choice, or several without stream.",
            param="n",
            code="unsupported_parameter",
        )
    if stream and chat.logprobs:
        raise invalid(
            "logprobs cannot be streamed by the gateway: ask for them without stream.",
            param="logprobs",
            code="unsupported_parameter",
        )

    # max_completion_tokens (OpenAI's newer name) wins when both are given.
    max_tokens = _positive_int(data, "max_tokens")
    max_tokens = _positive_int(data, "max_completion_tokens") or max_tokens
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        temperature=_number(data, "temperature", 0, 2),
        max_tokens=max_tokens,
        sampling=sampling,
        chat=chat,
    )
