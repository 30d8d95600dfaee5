"""Canonical (OpenAI-shaped) messages, tools and tool choice ↔ Anthropic's Messages API.

- system messages → the top-level `system` text (joined in order);
- user content parts → text and image blocks (a data URI → a base64 source, a URL → a url source);
- assistant tool calls → `tool_use` blocks (arguments parsed from their JSON text);
- tool messages → `tool_result` blocks in a user turn; consecutive turns of one role merge,
  as Anthropic needs user and assistant to alternate;
- tools → `{name, description, input_schema}`; tool_choice auto/required/named/none →
  auto/any/tool/none, and `parallel_tool_calls: false` → `disable_parallel_tool_use`;
- back: text and `tool_use` blocks → text and OpenAI tool calls; stop reasons → finish reasons.

Tool-call ids pass unchanged when they fit Anthropic's pattern (OpenAI's `call_…` do), so a
conversation can move between kinds mid-way; other characters are replaced the same way on
both sides of a call.
"""

from __future__ import annotations

import json
import re
from typing import Any

from routing.errors import InvalidRequest
from routing.messages import ToolChoice, Tools

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_DATA_URI = re.compile(r"^data:(?P<type>[^;,]+);base64,(?P<data>.*)$", re.DOTALL)

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def tool_id(value: str) -> str:
    return _ID_UNSAFE.sub("_", value) or "call"


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    url = part["image_url"]["url"]
    match = _DATA_URI.match(url)
    if match is not None:
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": match["type"], "data": match["data"]},
        }
    return {"type": "image", "source": {"type": "url", "url": url}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for part in content:
        if part.get("type") == "image_url":
            blocks.append(_image_block(part))
        elif part.get("text"):
            blocks.append({"type": "text", "text": part["text"]})
    return blocks


def _tool_input(arguments: str, *, index: int, call: int) -> dict[str, Any]:
    param = f"messages[{index}].tool_calls[{call}].function.arguments"
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        raise InvalidRequest(f"{param} is not valid JSON.", param=param, code="invalid_value") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{param} must be a JSON object.", param=param, code="invalid_value")
    return value


def messages_to_anthropic(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """(system text or None, Anthropic messages) for canonical messages."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for index, message in enumerate(messages):
        role = message["role"]
        content = message.get("content")
        if role == "system":
            text = content if isinstance(content, str) else ""
            if text:
                system.append(text)
        elif role == "user":
            add("user", _blocks(content))
        elif role == "assistant":
            blocks = _blocks(content)
            for k, call in enumerate(message.get("tool_calls") or ()):
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": tool_id(call["id"]),
                        "name": call["function"]["name"],
                        "input": _tool_input(call["function"]["arguments"], index=index, call=k),
                    }
                )
            add("assistant", blocks)
        elif role == "tool":
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id(message["tool_call_id"])}
            result["content"] = content if isinstance(content, str) else ""
            add("user", [result])
    # Plain-text turns as strings: the shape Anthropic documents for them, and fewer bytes.
    for turn in turns:
        blocks = turn["content"]
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            turn["content"] = blocks[0]["text"]
    return ("\n\n".join(system) or None), turns


def tools_to_anthropic(tools: Tools) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        function = tool["function"]
        spec: dict[str, Any] = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            spec["description"] = function["description"]
        out.append(spec)
    return out


def tool_choice_to_anthropic(
    choice: ToolChoice, *, parallel_tool_calls: bool | None
) -> dict[str, Any] | None:
    if choice is None and parallel_tool_calls is None:
        return None
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict):
        out: dict[str, Any] = {"type": "tool", "name": choice["function"]["name"]}
    else:
        out = {"type": "any" if choice == "required" else "auto"}
    if parallel_tool_calls is False:
        out["disable_parallel_tool_use"] = True
    return out


def tool_calls_from_anthropic(blocks: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """(text, OpenAI tool calls) from an Anthropic response's content blocks (dicts or SDK objects)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        get = block.get if isinstance(block, dict) else lambda name, b=block: getattr(b, name, None)
        kind = get("type")
        if kind == "text":
            texts.append(get("text") or "")
        elif kind == "tool_use":
            calls.append(
                {
                    "id": get("id"),
                    "type": "function",
                    "function": {
                        "name": get("name"),
                        "arguments": json.dumps(get("input") or {}, ensure_ascii=False),
                    },
                }
            )
    return "".join(texts), calls


def finish_reason_from_anthropic(stop_reason: str | None) -> str | None:
    return FINISH_REASONS.get(stop_reason or "", stop_reason)
