"""Anthropic's Messages API format → the canonical messages, tools and tool choice, and what
both directions share.

A request in Anthropic's shape (the gateway's POST /v1/messages) becomes the canonical,
OpenAI-shaped form every provider kind translates from (routing.messages), so any model
answers it. The Anthropic provider package (routing/providers/anthropic/wire.py) maps the
other way, canonical → Anthropic's wire, and shares from here the stop reasons and the image
sources:

- `system` (a string or text blocks) → one system message (blocks joined by a blank line);
- user turns: text and image blocks (a base64 source → a data URI, a url source → the URL)
  → content parts; each `tool_result` block → a tool message answering its `tool_use_id`
  (text content joined; `is_error` marks the text "Error: …"; images inside a result go to
  the user message after the results, as the canonical tool message holds text only);
  the tool messages come first, as the canonical form needs them right after the call;
- assistant turns: text blocks → the content, `tool_use` blocks → tool calls (the input as
  its JSON text); `thinking` / `redacted_thinking` blocks are left out (another model's
  reasoning cannot be sent on; thinking is not requested through this format);
- tools `{name, description, input_schema}` → function tools; Anthropic's own tools (web
  search, bash, text editor, computer use, …) are refused naming their type;
- tool_choice auto / any / tool{name} / none → "auto" / "required" / a named function /
  "none", `disable_parallel_tool_use` → `parallel_tool_calls: false`.

Every problem is an `InvalidRequest` naming the field in Anthropic's terms
(`messages[2].content[1].source.media_type`); the result is checked once more by
`messages_parse` (which makes it `ParsedMessages`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from routing.errors import InvalidRequest
from routing.messages.parse import (
    IMAGE_MAX_BYTES,
    IMAGE_MEDIA_TYPES,
    ParsedMessages,
    ToolChoice,
    Tools,
    messages_parse,
    text_check,
    tools_parse,
    wrong_type,
)

# Anthropic's stop_reason → the engine's (OpenAI's) finish_reason, and back.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

_DATA_URI = re.compile(r"^data:(?P<type>[^;,]+);base64,(?P<data>.*)$", re.DOTALL)
_SKIPPED_BLOCKS = ("thinking", "redacted_thinking")


def stop_reason_of(finish_reason: str | None, *, tool_calls: bool = False) -> str:
    """The Anthropic stop_reason for an engine finish_reason (end_turn when unknown)."""
    if tool_calls and finish_reason in (None, "stop", "tool_calls"):
        return "tool_use"
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def image_source_of(url: str) -> dict[str, Any]:
    """A canonical image URL as an Anthropic image source (a data URI → base64)."""
    match = _DATA_URI.match(url)
    if match is not None:
        return {"type": "base64", "media_type": match["type"], "data": match["data"]}
    return {"type": "url", "url": url}


def _string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(param, "a string", value)
    return text_check(value, param)


def _block_type(block: Any, param: str) -> str:
    if not isinstance(block, dict):
        raise wrong_type(param, "a content block (an object)", block)
    kind = block.get("type")
    if not isinstance(kind, str):
        raise wrong_type(f"{param}.type", "a string", kind)
    return kind


def _unsupported(param: str, kind: str, allowed: str) -> InvalidRequest:
    return InvalidRequest(
        f"{param}.type {kind!r} is not supported here (use {allowed}).",
        param=f"{param}.type",
        code="unsupported_content",
    )


def image_url_of(block: dict[str, Any], param: str) -> str:
    """An Anthropic image block's source as a canonical image URL (checked: a known media
    type, valid base64 within IMAGE_MAX_BYTES, an http(s) URL)."""
    source = block.get("source")
    if not isinstance(source, dict):
        raise wrong_type(f"{param}.source", "an object", source)
    kind = source.get("type")
    if kind == "base64":
        media_type = source.get("media_type")
        if media_type not in IMAGE_MEDIA_TYPES:
            raise InvalidRequest(
                f"{param}.source.media_type must be one of {', '.join(IMAGE_MEDIA_TYPES)}, not {media_type!r}.",
                param=f"{param}.source.media_type",
                code="invalid_image",
            )
        data = _string(source.get("data"), f"{param}.source.data")
        if len(data) * 3 // 4 > IMAGE_MAX_BYTES:
            raise InvalidRequest(
                f"{param}.source.data holds an image of about {len(data) * 3 / 4 / 1_048_576:.1f} MB; "
                f"the limit is {IMAGE_MAX_BYTES / 1_048_576:.0f} MB.",
                param=f"{param}.source.data",
                code="image_too_large",
            )
        try:
            base64.b64decode(data[:4096] + "=" * (-len(data[:4096]) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(
                f"{param}.source.data is not valid base64.",
                param=f"{param}.source.data",
                code="invalid_image",
            ) from None
        return f"data:{media_type};base64,{data}"
    if kind == "url":
        url = _string(source.get("url"), f"{param}.source.url")
        if not url.lower().startswith(("https://", "http://")):
            raise InvalidRequest(
                f"{param}.source.url must be an http(s) URL.",
                param=f"{param}.source.url",
                code="invalid_image",
            )
        return url
    raise InvalidRequest(
        f"{param}.source.type must be 'base64' or 'url', not {kind!r}.",
        param=f"{param}.source.type",
        code="invalid_image",
    )


def _tool_result(
    block: dict[str, Any], param: str, call_ids: set[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the tool message, the image parts the result held) for a tool_result block."""
    call_id = _string(block.get("tool_use_id"), f"{param}.tool_use_id")
    if call_id not in call_ids:
        raise InvalidRequest(
            f"{param}.tool_use_id {call_id!r} answers no tool_use block of an earlier assistant message.",
            param=f"{param}.tool_use_id",
            code="invalid_value",
        )
    content = block.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(text_check(content, f"{param}.content"))
    elif isinstance(content, list):
        for k, inner in enumerate(content):
            p = f"{param}.content[{k}]"
            kind = _block_type(inner, p)
            if kind == "text":
                texts.append(_string(inner.get("text"), f"{p}.text"))
            elif kind == "image":
                images.append({"type": "image_url", "image_url": {"url": image_url_of(inner, p)}})
            else:
                raise _unsupported(p, kind, "'text' or 'image'")
    elif content is not None:
        raise wrong_type(f"{param}.content", "a string or an array of blocks", content)
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        raise wrong_type(f"{param}.is_error", "a boolean", is_error)
    text = "\n".join(texts)
    if is_error:
        text = f"Error: {text}" if text else "Error."
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def _user_turn(content: list[Any], param: str, call_ids: set[str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        p = f"{param}[{j}]"
        kind = _block_type(block, p)
        if kind == "text":
            parts.append({"type": "text", "text": _string(block.get("text"), f"{p}.text")})
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": image_url_of(block, p)}})
        elif kind == "tool_result":
            message, images = _tool_result(block, p, call_ids)
            results.append(message)
            parts.extend(images)
        else:
            raise _unsupported(p, kind, "'text', 'image' or 'tool_result'")
    if parts:
        results.append({"role": "user", "content": parts})
    return results


def _assistant_turn(content: list[Any], param: str, call_ids: set[str]) -> dict[str, Any] | None:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        p = f"{param}[{j}]"
        kind = _block_type(block, p)
        if kind == "text":
            texts.append(_string(block.get("text"), f"{p}.text"))
        elif kind == "tool_use":
            ident = _string(block.get("id"), f"{p}.id")
            name = _string(block.get("name"), f"{p}.name")
            arguments = block.get("input")
            if arguments is None:
                arguments = {}
            if not isinstance(arguments, dict):
                raise wrong_type(f"{p}.input", "an object", arguments)
            calls.append(
                {
                    "id": ident,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
                }
            )
            call_ids.add(ident)
        elif kind not in _SKIPPED_BLOCKS:
            raise _unsupported(p, kind, "'text' or 'tool_use'")
    if not texts and not calls:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _system(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return text_check(raw, "system") or None
    if not isinstance(raw, list):
        raise wrong_type("system", "a string or an array of text blocks", raw)
    texts = []
    for j, block in enumerate(raw):
        kind = _block_type(block, f"system[{j}]")
        if kind != "text":
            raise _unsupported(f"system[{j}]", kind, "'text'")
        texts.append(_string(block.get("text"), f"system[{j}].text"))
    return "\n\n".join(t for t in texts if t) or None


def anthropic_messages_parse(raw: Any, *, system: Any = None, param: str = "messages") -> ParsedMessages:
    """The canonical messages for an Anthropic request's `system` and `messages`, or an
    InvalidRequest naming the field."""
    if not isinstance(raw, list):
        raise wrong_type(param, "an array of messages", raw)
    if not raw:
        raise InvalidRequest(f"{param} must contain at least one message.", param=param, code="invalid_value")
    out: list[dict[str, Any]] = []
    origin: list[int] = []  # the Anthropic message each canonical one came from (-1: system)
    text = _system(system)
    if text:
        out.append({"role": "system", "content": text})
        origin.append(-1)
    call_ids: set[str] = set()
    for i, message in enumerate(raw):
        p = f"{param}[{i}]"
        if not isinstance(message, dict):
            raise wrong_type(p, "an object", message)
        role = message.get("role")
        if role not in ("user", "assistant"):
            hint = " (a system prompt goes in the top-level system field)" if role == "system" else ""
            raise InvalidRequest(
                f"{p}.role must be 'user' or 'assistant', not {role!r}{hint}.",
                param=f"{p}.role",
                code="invalid_value",
            )
        content = message.get("content")
        if isinstance(content, str):
            turns = [{"role": role, "content": text_check(content, f"{p}.content")}]
        elif isinstance(content, list):
            if role == "user":
                turns = _user_turn(content, f"{p}.content", call_ids)
            else:
                turn = _assistant_turn(content, f"{p}.content", call_ids)
                turns = [turn] if turn is not None else []
        else:
            raise wrong_type(f"{p}.content", "a string or an array of content blocks", content)
        if role == "user" and not turns:
            raise InvalidRequest(
                f"{p}.content must not be empty.", param=f"{p}.content", code="invalid_value"
            )
        out.extend(turns)
        origin.extend([i] * len(turns))
    try:
        return messages_parse(out, param=param)
    except InvalidRequest as exc:  # name the caller's message, not the canonical one
        match = re.match(rf"{re.escape(param)}\[(\d+)\]", exc.param or "")
        if match is not None:
            source = origin[int(match[1])]
            named = "system" if source < 0 else f"{param}[{source}]"
            exc.param = named
            exc.message = f"{named}: {exc.message}"
        raise


_TOOL_FIELDS = ((".function.parameters", ".input_schema"), (".function.", "."))


def anthropic_tools_parse(raw: Any, *, param: str = "tools") -> Tools | None:
    """Anthropic custom tools as canonical function tools (None when none are offered)."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise wrong_type(param, "an array of tools", raw)
    converted = []
    for i, tool in enumerate(raw):
        p = f"{param}[{i}]"
        if not isinstance(tool, dict):
            raise wrong_type(p, "an object", tool)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise InvalidRequest(
                f"{p}.type {kind!r} is a tool Anthropic runs itself; only custom tools "
                "(name, description, input_schema) are supported, as any model may answer.",
                param=f"{p}.type",
                code="unsupported_tool",
            )
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise wrong_type(f"{p}.input_schema", "a JSON Schema object", schema)
        function: dict[str, Any] = {"name": tool.get("name"), "parameters": schema}
        if tool.get("description") is not None:
            function["description"] = tool["description"]
        converted.append({"type": "function", "function": function})
    try:
        return tools_parse(converted, param=param)
    except InvalidRequest as exc:
        for canonical, ours in _TOOL_FIELDS:
            exc.param = (exc.param or "").replace(canonical, ours) or None
            exc.message = exc.message.replace(canonical, ours)
        raise


def anthropic_tool_choice_parse(
    raw: Any, *, tools: Tools | None, param: str = "tool_choice"
) -> tuple[ToolChoice, bool | None]:
    """(canonical tool_choice, parallel_tool_calls) for Anthropic's tool_choice."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise wrong_type(param, "an object such as {'type': 'auto'}", raw)
    kind = raw.get("type")
    disable = raw.get("disable_parallel_tool_use")
    if disable is not None and not isinstance(disable, bool):
        raise wrong_type(f"{param}.disable_parallel_tool_use", "a boolean", disable)
    parallel = False if disable else None
    if kind == "none":
        return "none", parallel
    if kind not in ("auto", "any", "tool"):
        raise InvalidRequest(
            f"{param}.type must be 'auto', 'any', 'tool' or 'none', not {kind!r}.",
            param=f"{param}.type",
            code="invalid_value",
        )
    if not tools:
        if kind == "auto":
            return None, None
        raise InvalidRequest(
            f"{param}.type {kind!r} needs tools.", param=f"{param}.type", code="invalid_value"
        )
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    name = raw.get("name")
    if not isinstance(name, str):
        raise wrong_type(f"{param}.name", "a string (the tool to call)", name)
    if name not in {tool["function"]["name"] for tool in tools}:
        raise InvalidRequest(
            f"{param}.name {name!r} is not among the tools offered.",
            param=f"{param}.name",
            code="invalid_value",
        )
    return {"type": "function", "function": {"name": name}}, parallel
