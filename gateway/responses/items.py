"""The Responses API's `input` as canonical messages (`routing.messages`), errors naming the
input item they are about (`input[2].call_id`, `input[0].content[1].image_url`).

A string is one user message. Message items keep their role (`developer` → `system`, as for
chat) and their parts (`input_text` / `output_text` → text, `input_image` → an image URL or a
data URI, checked as chat checks images); consecutive `function_call` items become the
`tool_calls` of one assistant message (after the text of an assistant message just before
them); a `function_call_output` becomes a tool message answering its call. Any other item type
is a 400 naming it.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.errors import GatewayError, invalid
from routing.errors import InvalidRequest
from routing.messages import ParsedMessages, messages_parse
from routing.orchestrator import type_name as _type_name

MESSAGE_ROLES = ("user", "assistant", "system", "developer")
_INPUT_INDEX = re.compile(r"^input\[(\d+)\]")


def wrong_type(param: str, expected: str, value: Any) -> GatewayError:
    return invalid(f"{param} must be {expected}, not {_type_name(value)}.", param=param, code="invalid_type")


def renamed(exc: InvalidRequest, replacements: list[tuple[str, str]]) -> GatewayError:
    """The chat checks' error with its field names as the Responses API spells them."""
    message, param = exc.message, exc.param
    for old, new in replacements:
        message = message.replace(old, new)
        param = param.replace(old, new) if param else param
    return invalid(message, param=param, code=exc.code)


def _string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(param, "a string", value)
    return value


def _part(part: Any, param: str, role: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise wrong_type(param, "an object", part)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _string(part.get("text"), f"{param}.text")}
    if kind == "refusal" and role == "assistant":
        return {"type": "text", "text": _string(part.get("refusal"), f"{param}.refusal")}
    if kind == "input_image":
        if part.get("file_id") is not None:
            raise invalid(
                f"{param}.file_id is not supported (the gateway has no file storage): send image_url, "
                "an http(s) URL or a data URI.",
                param=f"{param}.file_id",
                code="unsupported_content",
            )
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise wrong_type(f"{param}.image_url", "an http(s) URL or a data URI", url)
        image: dict[str, Any] = {"url": url}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    allowed = "output_text or refusal" if role == "assistant" else "input_text or input_image"
    raise invalid(
        f"{param}.type {kind!r} is not supported in a {role} message (use {allowed}).",
        param=f"{param}.type",
        code="unsupported_content",
    )


def _message(item: dict[str, Any], param: str) -> dict[str, Any]:
    role = item.get("role")
    if not isinstance(role, str) or role not in MESSAGE_ROLES:
        raise invalid(
            f"{param}.role must be one of {', '.join(MESSAGE_ROLES)}, not {role!r}.",
            param=f"{param}.role",
            code="invalid_value",
        )
    content = item.get("content")
    if isinstance(content, list):
        content = [_part(p, f"{param}.content[{j}]", role) for j, p in enumerate(content)]
    elif not isinstance(content, str):
        raise wrong_type(f"{param}.content", "a string or an array of content parts", content)
    return {"role": role, "content": content}


def _function_call(item: dict[str, Any], param: str) -> dict[str, Any]:
    arguments = item.get("arguments", "")
    if not isinstance(arguments, str | dict):
        raise wrong_type(f"{param}.arguments", "a string of JSON", arguments)
    return {
        "id": _string(item.get("call_id"), f"{param}.call_id"),
        "type": "function",
        "function": {"name": _string(item.get("name"), f"{param}.name"), "arguments": arguments},
    }


def _call_output(item: dict[str, Any], param: str) -> str:
    output = item.get("output")
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        texts = []
        for j, part in enumerate(output):
            p = f"{param}.output[{j}]"
            if not isinstance(part, dict) or part.get("type") != "input_text":
                kind = part.get("type") if isinstance(part, dict) else _type_name(part)
                raise invalid(
                    f"{p} must be an input_text part, not {kind!r} (a tool's output reaches the model as text).",
                    param=p,
                    code="unsupported_content",
                )
            texts.append(_string(part.get("text"), f"{p}.text"))
        return "\n".join(texts)
    raise wrong_type(f"{param}.output", "a string or an array of input_text parts", output)


def input_parse(raw: Any, *, continues: bool) -> tuple[ParsedMessages, dict[str, int]]:
    """The canonical messages for `input`, and the call ids its function_call_output items
    answer that none of its own function_call items made (allowed only when the request
    `continues` a previous response, whose calls the endpoint checks them against)."""
    if isinstance(raw, str):
        return messages_parse([{"role": "user", "content": raw}], param="input"), {}
    if not isinstance(raw, list):
        raise wrong_type("input", "a string or an array of input items", raw)
    if not raw:
        raise invalid("input must contain at least one item.", param="input", code="invalid_value")
    messages: list[dict[str, Any]] = []
    origin: list[int] = []  # built message -> input index
    made: set[str] = set()
    answers: dict[str, int] = {}
    assistant_open = False  # the last item was an assistant message or a function_call
    for i, item in enumerate(raw):
        p = f"input[{i}]"
        if not isinstance(item, dict):
            raise wrong_type(p, "an object", item)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            messages.append(_message(item, p))
            origin.append(i)
            assistant_open = messages[-1]["role"] == "assistant"
        elif kind == "function_call":
            call = _function_call(item, p)
            made.add(call["id"])
            if assistant_open:  # the calls of the assistant turn just before
                messages[-1].setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
                origin.append(i)
            assistant_open = True
        elif kind == "function_call_output":
            assistant_open = False
            call_id = _string(item.get("call_id"), f"{p}.call_id")
            if call_id not in made:
                if not continues:
                    raise invalid(
                        f"{p}.call_id {call_id!r} answers no function_call earlier in input "
                        "(send the function_call item, or previous_response_id).",
                        param=f"{p}.call_id",
                        code="invalid_value",
                    )
                answers[call_id] = i
            messages.append({"role": "tool", "tool_call_id": call_id, "content": _call_output(item, p)})
            origin.append(i)
        else:
            raise invalid(
                f"{p}.type {kind!r} is not supported: the gateway takes message, function_call and "
                "function_call_output items.",
                param=f"{p}.type",
                code="unsupported_item",
            )
    # A stand-in for the previous response's calls, so the chat checks accept their answers.
    calls = [
        {"id": c, "type": "function", "function": {"name": "previous", "arguments": "{}"}} for c in answers
    ]
    stand_in = [{"role": "assistant", "content": None, "tool_calls": calls}] if calls else []
    try:
        parsed = messages_parse(stand_in + messages, param="input")
    except InvalidRequest as exc:
        raise _input_error(exc, origin, offset=len(stand_in)) from None
    return ParsedMessages(parsed[len(stand_in) :]), answers


def _input_error(exc: InvalidRequest, origin: list[int], *, offset: int) -> GatewayError:
    """An error from `messages_parse` naming the input item it came from."""

    def item(match: re.Match[str]) -> str:
        k = int(match[1]) - offset
        return f"input[{origin[k] if 0 <= k < len(origin) else k}]"

    message = exc.message
    param = exc.param
    if param and (found := _INPUT_INDEX.match(param)):
        named = item(found)
        message = message.replace(found[0], named)
        param = _INPUT_INDEX.sub(named, param)
    replacements = [(".image_url.url", ".image_url"), (".image_url.detail", ".detail")]
    return renamed(InvalidRequest(message, param=param, code=exc.code), replacements)
