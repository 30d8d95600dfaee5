"""Canonical (OpenAI-shaped) messages, tools and tool choice ↔ Anthropic's Messages API.

- system messages → the top-level `system` text (joined in order);
- user content parts → text and image blocks (a data URI → a base64 source, a URL → a url source);
- assistant tool calls → `tool_use` blocks (arguments parsed from their JSON text);
- tool messages → `tool_result` blocks in a user turn; consecutive turns of one role merge,
  as Anthropic needs user and assistant to alternate;
- tools → `{name, description, input_schema}`; tool_choice auto/required/named/none →
  auto/any/tool/none, and `parallel_tool_calls: false` → `disable_parallel_tool_use`;
- back: text and `tool_use` blocks → text and OpenAI tool calls; stop reasons → finish reasons.

The stop reasons and the image sources are shared with the reverse direction (a request in
Anthropic's shape → canonical, for the gateway's /v1/messages): routing/messages/anthropic.py.

Tool-call ids pass unchanged when they fit Anthropic's pattern (OpenAI's `call_…` do), so a
conversation can move between kinds mid-way; other characters are replaced the same way on
both sides of a call. A conversation with tool turns but no tools offered on this request
(a final "now answer" turn) still declares the tools it used, with tool_choice none: the API
refuses tool_use blocks without a declaration.

Reading answers: `completion_from_anthropic_json` (a Messages body → Completion, tool calls
included; a tool_use block that is not a proper call is a transient provider error) and the
usage readers (`input_tokens` counts every prompt token, as OpenAI's prompt_tokens does:
uncached + cache reads + cache writes; `cached_tokens` the cache reads among them).
"""

from __future__ import annotations

import json
import re
from typing import Any

from routing.errors import InvalidRequest, ModelPermanentError, TransientError
from routing.messages import ToolChoice, Tools
from routing.messages.anthropic import FINISH_REASONS, image_source_of
from routing.providers.base import Completion, Usage

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def tool_id(value: str) -> str:
    return _ID_UNSAFE.sub("_", value) or "call"


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    return {"type": "image", "source": image_source_of(part["image_url"]["url"])}


def _blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "image_url":
            blocks.append(_image_block(part))
        elif kind == "text":
            if part.get("text"):  # Anthropic refuses empty text blocks
                blocks.append({"type": "text", "text": part["text"]})
        else:
            raise InvalidRequest(
                f"{param}[{j}].type {kind!r} cannot be sent to Anthropic models.",
                param=f"{param}[{j}].type",
                code="unsupported_content",
            )
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
            add("user", _blocks(content, f"messages[{index}].content"))
        elif role == "assistant":
            blocks = _blocks(content, f"messages[{index}].content")
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
            if isinstance(content, str) and content:  # an empty result is sent without content
                result["content"] = content
            add("user", [result])
    # Plain-text turns as strings: the shape Anthropic documents for them, and fewer bytes.
    for turn in turns:
        blocks = turn["content"]
        if len(blocks) == 1 and blocks[0]["type"] == "text":
            turn["content"] = blocks[0]["text"]
    return ("\n\n".join(system) or None), turns


def _input_schema(parameters: Any) -> dict[str, Any]:
    """A tool's parameters as Anthropic's input_schema, which must say `"type": "object"`."""
    if not parameters:
        return {"type": "object", "properties": {}}
    if "type" not in parameters:
        return {"type": "object", **parameters}
    return parameters


def tools_to_anthropic(tools: Tools) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        function = tool["function"]
        spec: dict[str, Any] = {
            "name": function["name"],
            "input_schema": _input_schema(function.get("parameters")),
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


def tools_of_history(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Declarations for the tools a conversation's assistant turns called (any input): what
    a request with tool turns but no tools offered declares, so the API accepts the turns."""
    names: dict[str, None] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            names[call["function"]["name"]] = None
    return [{"name": name, "input_schema": {"type": "object"}} for name in names]


def tool_calls_from_anthropic(blocks: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """(text, OpenAI tool calls) from an Anthropic response's content blocks (dicts or SDK
    objects). A tool_use block without a string id and name, or whose input is not an
    object, is a TransientError (the model's call was malformed; another try may do better)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        get = block.get if isinstance(block, dict) else lambda name, b=block: getattr(b, name, None)
        kind = get("type")
        if kind == "text":
            text = get("text")
            texts.append(text if isinstance(text, str) else "")
        elif kind == "tool_use":
            ident, name, arguments = get("id"), get("name"), get("input")
            if arguments is None:
                arguments = {}
            if not (isinstance(ident, str) and ident and isinstance(name, str) and name):
                raise TransientError("The model sent a malformed tool call (no id or name).")
            if not isinstance(arguments, dict):
                raise TransientError(f"The model sent a malformed tool call: {name} input is not an object.")
            calls.append(
                {
                    "id": ident,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
                }
            )
    return "".join(texts), calls


def tool_arguments_check(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Streamed calls, assembled: each call's arguments must be a JSON object (an empty text
    becomes "{}"); anything else is a TransientError naming the tool."""
    for call in calls:
        function = call["function"]
        text = function["arguments"]
        if not text.strip():
            function["arguments"] = "{}"
            continue
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise TransientError(
                f"The model sent a malformed tool call: {function['name']} arguments are not a JSON object "
                f"({text[:80]!r})."
            )
    return calls


def finish_reason_from_anthropic(stop_reason: str | None) -> str | None:
    return FINISH_REASONS.get(stop_reason or "", stop_reason)


def completion_from_anthropic_json(content: bytes) -> Completion:
    """An Anthropic Messages body (JSON bytes) → Completion; an unreadable one is transient,
    a refusal model-permanent."""
    try:
        data = json.loads(content)
        blocks = data.get("content")
    except (ValueError, AttributeError):
        preview = content[:200].decode("utf-8", "replace")
        raise TransientError(f"The provider sent an answer we could not read: {preview!r}") from None
    if not isinstance(blocks, list):
        raise TransientError("The provider answered with no content.")
    text, calls = tool_calls_from_anthropic([b for b in blocks if isinstance(b, dict)])
    stop_reason = data.get("stop_reason")
    finish_reason = finish_reason_from_anthropic(stop_reason if isinstance(stop_reason, str) else None)
    if finish_reason == "content_filter":
        raise ModelPermanentError("The model refused to answer (stop_reason: refusal).")
    if calls and finish_reason == "stop":
        finish_reason = "tool_calls"
    usage = data.get("usage")
    return Completion(
        text=text,
        finish_reason=finish_reason,
        usage=usage_from_anthropic_dict(usage if isinstance(usage, dict) else {}),
        tool_calls=calls,
    )


def usage_from_anthropic_dict(usage: dict[str, Any]) -> Usage:
    def count(name: str) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) and value > 0 else 0

    cache_read = count("cache_read_input_tokens")
    return Usage(
        input_tokens=count("input_tokens") + cache_read + count("cache_creation_input_tokens"),
        output_tokens=count("output_tokens"),
        cached_tokens=cache_read,
    )


INPUT_FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def input_counts_merge(counts: dict[str, int], usage: dict[str, Any]) -> None:
    """A streamed event's usage (its JSON) input counts into `counts` (those present supersede)."""
    for name in INPUT_FIELDS:
        value = usage.get(name)
        if isinstance(value, int):
            counts[name] = value
