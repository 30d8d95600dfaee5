"""Response objects in the Responses API's shape, from the engine's Result, and the assistant
turn they add to the conversation a later `previous_response_id` continues.

    {"id": "resp_…", "object": "response", "created_at": …, "status": "completed",
     "model": "<the model that answered>",
     "output": [{"type": "message", "id": "msg_…", "role": "assistant", "status": "completed",
                 "content": [{"type": "output_text", "text": "…", "annotations": []}]},
                {"type": "function_call", "id": "fc_…", "call_id": "call_…", "name": "…",
                 "arguments": "{…}", "status": "completed"}],
     "usage": {"input_tokens", "input_tokens_details": {"cached_tokens"}, "output_tokens",
               "output_tokens_details": {"reasoning_tokens"}, "total_tokens"},
     "error": null, "incomplete_details": null, "instructions", "tools", "tool_choice", … (echoed)}

A model stopped by the token limit answers `status: "incomplete"` with
`incomplete_details.reason` "max_output_tokens" ("content_filter" when a filter stopped it).
"""

from __future__ import annotations

import secrets
from typing import Any

from routing.orchestrator import Result

# finish_reason -> incomplete_details.reason
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def item_id(prefix: str) -> str:
    """An id as OpenAI makes them: `resp_…`, `msg_…`, `fc_…` and 48 hex digits."""
    return f"{prefix}_{secrets.token_hex(24)}"


def usage_object(result: Result | None) -> dict[str, Any] | None:
    if result is None:
        return None
    u = result.usage
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens or 0},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens or 0},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def message_item(ident: str, text: str, *, status: str = "completed") -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"type": "message", "id": ident, "role": "assistant", "status": status, "content": content}


def function_call_item(
    ident: str, call_id: str, name: str, arguments: str, *, status: str = "completed"
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": ident,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def output_items(result: Result) -> list[dict[str, Any]]:
    """The output items of an answer: its text as a message (also when it is empty and no
    tool was called), then one function_call item per tool call."""
    status = "incomplete" if result.finish_reason in INCOMPLETE else "completed"
    items: list[dict[str, Any]] = []
    if result.text or not result.tool_calls:
        items.append(message_item(item_id("msg"), result.text, status=status))
    for call in result.tool_calls:
        function = call.get("function") or {}
        items.append(
            function_call_item(
                item_id("fc"),
                call.get("id") or item_id("call"),
                function.get("name", ""),
                function.get("arguments", ""),
            )
        )
    return items


def status_of(result: Result) -> tuple[str, dict[str, Any] | None]:
    reason = INCOMPLETE.get(result.finish_reason or "")
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def response_object(
    *,
    response_id: str,
    created_at: int,
    model: str,
    echo: dict[str, Any],
    previous_response_id: str | None,
    store: bool,
    status: str = "in_progress",
    output: list[dict[str, Any]] | None = None,
    result: Result | None = None,
    error: dict[str, Any] | None = None,
    incomplete_details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete_details,
        "model": model,
        "output": output or [],
        "previous_response_id": previous_response_id,
        "service_tier": "default",
        "store": store,
        "usage": usage_object(result),
        **echo,
    }


def assistant_turn(output: list[dict[str, Any]]) -> dict[str, Any]:
    """The output as one canonical assistant message (routing.messages), to store."""
    text = "".join(part["text"] for item in output if item["type"] == "message" for part in item["content"])
    calls = [
        {"id": i["call_id"], "type": "function", "function": {"name": i["name"], "arguments": i["arguments"]}}
        for i in output
        if i["type"] == "function_call"
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message
