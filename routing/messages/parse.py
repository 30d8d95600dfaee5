"""Parsing and validating messages, tools and tool_choice into the canonical form.

Every problem is an `InvalidRequest` naming the caller's field (`messages[2].tool_calls[0].id`),
so each front door can answer a 400 in its own API's shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from routing.errors import InvalidRequest

Messages = list[dict[str, Any]]


class ParsedMessages(list[dict[str, Any]]):
    """A list `messages_parse` made: canonical and checked. The engine's own check of the
    messages it is given skips these (a front door parses once, at the door)."""

    __slots__ = ()


Tools = list[dict[str, Any]]
ToolChoice = str | dict[str, Any] | None

ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_MESSAGES = 10_000
MAX_TOOLS = 128
# A decoded image larger than this is refused (Anthropic's own limit is 5 MB an image; a data
# URI this large is rarely what a client meant to send through a gateway).
IMAGE_MAX_BYTES = 5 * 1024 * 1024
IMAGE_MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)$", re.DOTALL)


def type_described(value: Any) -> str:
    """A JSON value's type as an error message says it ("an object", "a string", "null")."""
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def wrong_type(param: str, expected: str, value: Any) -> InvalidRequest:
    """The 400 for a field of the wrong type, naming the field, what it must be and what it is."""
    return InvalidRequest(
        f"{param} must be {expected}, not {type_described(value)}.", param=param, code="invalid_type"
    )


def text_check(text: str, param: str) -> str:
    """`text`, if it can be sent as UTF-8; a lone surrogate (JSON `\\ud800`) cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(
            f"{param} contains a character that cannot be encoded as UTF-8 "
            f"(a lone surrogate, U+{ord(text[exc.start]):04X}, at position {exc.start}).",
            param=param,
            code="invalid_encoding",
        ) from None
    return text


def _string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise wrong_type(param, "a string", value)
    return text_check(value, param)


def _image_url(part: dict[str, Any], param: str) -> dict[str, Any]:
    image = part.get("image_url")
    if isinstance(image, str):  # an older shorthand some clients send
        image = {"url": image}
    if not isinstance(image, dict):
        raise wrong_type(f"{param}.image_url", "an object with a url", image)
    url = image.get("url")
    if not isinstance(url, str) or not url:
        raise wrong_type(f"{param}.image_url.url", "a non-empty string", url)
    if url.startswith("data:"):
        match = _DATA_URI.match(url)
        if match is None:
            raise InvalidRequest(
                f"{param}.image_url.url is a data URI but not 'data:<media type>;base64,<data>'.",
                param=f"{param}.image_url.url",
                code="invalid_image",
            )
        media_type = match["type"].lower()
        if media_type not in IMAGE_MEDIA_TYPES:
            raise InvalidRequest(
                f"{param}.image_url.url has media type {media_type!r}; send one of {', '.join(IMAGE_MEDIA_TYPES)}.",
                param=f"{param}.image_url.url",
                code="invalid_image",
            )
        data = match["data"]
        size = len(data) * 3 // 4
        if size > IMAGE_MAX_BYTES:
            raise InvalidRequest(
                f"{param}.image_url.url holds an image of about {size / 1_048_576:.1f} MB; "
                f"the limit is {IMAGE_MAX_BYTES / 1_048_576:.0f} MB (send a URL or a smaller image).",
                param=f"{param}.image_url.url",
                code="image_too_large",
            )
        try:
            base64.b64decode(data[:4096] + "=" * (-len(data[:4096]) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(
                f"{param}.image_url.url is not valid base64.",
                param=f"{param}.image_url.url",
                code="invalid_image",
            ) from None
    elif not url.lower().startswith(("https://", "http://")):
        raise InvalidRequest(
            f"{param}.image_url.url must be an http(s) URL or a data URI, not {url.split(':', 1)[0][:20]!r}.",
            param=f"{param}.image_url.url",
            code="invalid_image",
        )
    normalised: dict[str, Any] = {"url": url}
    detail = image.get("detail")
    if detail is not None:
        if detail not in ("auto", "low", "high"):
            raise InvalidRequest(
                f"{param}.image_url.detail must be 'auto', 'low' or 'high'.",
                param=f"{param}.image_url.detail",
                code="invalid_value",
            )
        normalised["detail"] = detail
    return {"type": "image_url", "image_url": normalised}


def _content(content: Any, param: str, *, role: str) -> str | list[dict[str, Any]] | None:
    if content is None:
        return None
    if isinstance(content, str):
        return text_check(content, param)
    if not isinstance(content, list):
        raise wrong_type(param, "a string or an array of content parts", content)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        p = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise wrong_type(p, "an object", part)
        kind = part.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": _string(part.get("text"), f"{p}.text")})
        elif kind == "image_url" and role == "user":
            parts.append(_image_url(part, p))
        elif kind == "refusal" and role == "assistant":
            parts.append({"type": "text", "text": _string(part.get("refusal"), f"{p}.refusal")})
        else:
            allowed = "'text' or 'image_url'" if role == "user" else "'text'"
            raise InvalidRequest(
                f"{p}.type {kind!r} is not supported in a {role} message (use {allowed}).",
                param=f"{p}.type",
                code="unsupported_content",
            )
    if role != "user" or all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)  # text only: one string, as every wire takes
    return parts


def _tool_calls(raw: Any, param: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise wrong_type(param, "an array", raw)
    calls = []
    for k, call in enumerate(raw):
        p = f"{param}[{k}]"
        if not isinstance(call, dict):
            raise wrong_type(p, "an object", call)
        if call.get("type", "function") != "function":
            raise InvalidRequest(f"{p}.type must be 'function'.", param=f"{p}.type", code="invalid_value")
        function = call.get("function")
        if not isinstance(function, dict):
            raise wrong_type(f"{p}.function", "an object", function)
        arguments = function.get("arguments", "")
        calls.append(
            {
                "id": _string(call.get("id"), f"{p}.id"),
                "type": "function",
                "function": {
                    "name": _string(function.get("name"), f"{p}.function.name"),
                    "arguments": _arguments(arguments, f"{p}.function.arguments"),
                },
            }
        )
    return calls


def _arguments(value: Any, param: str) -> str:
    if isinstance(value, dict):  # some clients send the object itself, not its JSON text
        return json.dumps(value, ensure_ascii=False)
    return _string(value, param)


def messages_parse(raw: Any, *, param: str = "messages") -> ParsedMessages:
    """The canonical messages for `raw` (an OpenAI-style list), or InvalidRequest naming the field.

    Checks what every provider relies on: known roles; content parts a role may carry; image
    URLs that are http(s) or a data URI of an image type within the size limit; assistant
    tool calls with ids and names; each tool message answering a tool call made earlier in the
    conversation; text that can be encoded.
    """
    if not isinstance(raw, list):
        raise wrong_type(param, "an array of messages", raw)
    if not raw:
        raise InvalidRequest(f"{param} must contain at least one message.", param=param, code="invalid_value")
    if len(raw) > MAX_MESSAGES:
        raise InvalidRequest(
            f"{param} has more than {MAX_MESSAGES} messages.", param=param, code="invalid_value"
        )
    out = ParsedMessages()
    call_ids: set[str] = set()
    for i, message in enumerate(raw):
        p = f"{param}[{i}]"
        if not isinstance(message, dict):
            raise wrong_type(p, "an object", message)
        role = message.get("role")
        if role not in ROLES:
            raise InvalidRequest(
                f"{p}.role must be one of {', '.join(ROLES)}, not {role!r}.",
                param=f"{p}.role",
                code="invalid_value",
            )
        role = "system" if role == "developer" else role
        item: dict[str, Any] = {"role": role}
        content = _content(message.get("content"), f"{p}.content", role=role)
        if role == "assistant" and message.get("tool_calls"):
            item["tool_calls"] = _tool_calls(message["tool_calls"], f"{p}.tool_calls")
            call_ids.update(call["id"] for call in item["tool_calls"])
        elif content is None:
            raise InvalidRequest(f"{p}.content is required.", param=f"{p}.content", code="invalid_value")
        item["content"] = content
        if role == "tool":
            call_id = _string(message.get("tool_call_id"), f"{p}.tool_call_id")
            if call_id not in call_ids:
                raise InvalidRequest(
                    f"{p}.tool_call_id {call_id!r} answers no tool call of an earlier assistant message.",
                    param=f"{p}.tool_call_id",
                    code="invalid_value",
                )
            item["tool_call_id"] = call_id
        name = message.get("name")
        if name is not None:
            item["name"] = _string(name, f"{p}.name")
        out.append(item)
    return out


def tools_parse(raw: Any, *, param: str = "tools") -> Tools | None:
    """Function tools in the canonical form (None when none are offered)."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise wrong_type(param, "an array of tools", raw)
    if len(raw) > MAX_TOOLS:
        raise InvalidRequest(f"{param} has more than {MAX_TOOLS} tools.", param=param, code="invalid_value")
    tools: Tools = []
    names: set[str] = set()
    for i, tool in enumerate(raw):
        p = f"{param}[{i}]"
        if not isinstance(tool, dict):
            raise wrong_type(p, "an object", tool)
        if tool.get("type") != "function":
            raise InvalidRequest(
                f"{p}.type {tool.get('type')!r} is not supported: only function tools are "
                "(built-in tools such as web search run inside one provider).",
                param=f"{p}.type",
                code="unsupported_tool",
            )
        function = tool.get("function")
        if not isinstance(function, dict):
            raise wrong_type(f"{p}.function", "an object", function)
        name = _string(function.get("name"), f"{p}.function.name")
        if not TOOL_NAME.match(name):
            raise InvalidRequest(
                f"{p}.function.name must be 1-64 letters, digits, '_' or '-'.",
                param=f"{p}.function.name",
                code="invalid_value",
            )
        if name in names:
            raise InvalidRequest(f"{p}.function.name {name!r} is offered twice.", param=f"{p}.function.name")
        names.add(name)
        spec: dict[str, Any] = {"name": name}
        if function.get("description") is not None:
            spec["description"] = _string(function["description"], f"{p}.function.description")
        parameters = function.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise wrong_type(f"{p}.function.parameters", "a JSON Schema object", parameters)
            spec["parameters"] = parameters
        if function.get("strict") is not None:
            if not isinstance(function["strict"], bool):
                raise wrong_type(f"{p}.function.strict", "a boolean", function["strict"])
            spec["strict"] = function["strict"]
        tools.append({"type": "function", "function": spec})
    return tools


def tool_choice_parse(raw: Any, *, tools: Tools | None, param: str = "tool_choice") -> ToolChoice:
    """ "none" | "auto" | "required" | {"type": "function", "function": {"name"}}, or None."""
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw not in ("none", "auto", "required"):
            raise InvalidRequest(
                f"{param} must be 'none', 'auto', 'required' or a named function.",
                param=param,
                code="invalid_value",
            )
        if raw != "none" and not tools:
            raise InvalidRequest(f"{param} {raw!r} needs tools.", param=param, code="invalid_value")
        return raw
    if not isinstance(raw, dict) or raw.get("type") != "function":
        raise wrong_type(param, "a string or {'type': 'function', 'function': {'name': …}}", raw)
    function = raw.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise wrong_type(f"{param}.function.name", "a string", name)
    if name not in {tool["function"]["name"] for tool in tools or []}:
        raise InvalidRequest(
            f"{param} names {name!r}, which is not among the tools offered.",
            param=f"{param}.function.name",
            code="invalid_value",
        )
    return {"type": "function", "function": {"name": name}}
