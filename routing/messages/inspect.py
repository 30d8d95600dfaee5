"""Reading canonical messages: their text, their images, and what a call record keeps of them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Message = dict[str, Any]


@dataclass(frozen=True)
class ImageInfo:
    """An image part as a record may show it: never the bytes."""

    source: str  # "data" or "url"
    media_type: str  # "image/png"…, or "" for a URL
    size_bytes: int  # decoded size of a data URI; 0 for a URL
    host: str  # a URL's host; "" for data

    def placeholder(self) -> str:
        if self.source == "data":
            return f"[image: {self.media_type}, {max(1, round(self.size_bytes / 1024))} KB]"
        return f"[image: {self.host or 'url'}]"


def _image_info(part: dict[str, Any]) -> ImageInfo:
    url = part["image_url"]["url"]
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media_type = head[5:].split(";", 1)[0]
        return ImageInfo(source="data", media_type=media_type, size_bytes=len(data) * 3 // 4, host="")
    return ImageInfo(source="url", media_type="", size_bytes=0, host=urlsplit(url).hostname or "")


def message_text(message: Message) -> str:
    """The message's text (text parts joined by newlines); "" when it has none."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def last_user_text(messages: list[Message]) -> str | None:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message)
    return None


def images_in(messages: list[Message]) -> list[ImageInfo]:
    return [
        _image_info(part)
        for m in messages
        if isinstance(m.get("content"), list)
        for part in m["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    ]


def messages_have_images(messages: list[Message]) -> bool:
    return any(
        isinstance(m.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") == "image_url" for p in m["content"])
        for m in messages
    )


def _content_view(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    pieces = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "image_url":
            pieces.append(_image_info(part).placeholder())
        elif part.get("type") == "text":
            pieces.append(part.get("text", ""))
    return "\n".join(pieces)


def record_view(messages: list[Message]) -> str:
    """The conversation as a call record stores it: each turn's text, tool calls with their
    arguments, tool results with the call they answer, and images as placeholders."""
    turns = []
    for m in messages:
        role = m.get("role", "user")
        text = _content_view(m.get("content"))
        if role == "tool":
            turns.append(f"tool ({m.get('tool_call_id', '')}): {text}")
            continue
        lines = [f"{role}: {text}"] if text or not m.get("tool_calls") else [f"{role}:"]
        for call in m.get("tool_calls") or ():
            function = call.get("function", {})
            lines.append(
                f"  → {function.get('name', '')}({function.get('arguments', '')}) [{call.get('id', '')}]"
            )
        turns.append("\n".join(lines))
    return "\n\n".join(turns)


def response_view(text: str, tool_calls: list[dict[str, Any]] | None = None) -> str:
    """An answer as a call record stores it: its text, then its tool calls (if any) as JSON
    on a line of their own starting `tool_calls: `."""
    if not tool_calls:
        return text
    calls = TOOL_CALLS_MARK + json.dumps(tool_calls, ensure_ascii=False)
    return f"{text}\n\n{calls}" if text else calls


TOOL_CALLS_MARK = "tool_calls: "


def response_parse(text: str) -> tuple[str, list[dict[str, Any]]]:
    """`response_view`'s text back as (answer text, tool calls); a text whose tool calls do
    not read back (cut at the record's size limit) is all answer text."""
    if text.startswith(TOOL_CALLS_MARK):
        head, raw = "", text[len(TOOL_CALLS_MARK) :]
    else:
        head, mark, raw = text.rpartition("\n\n" + TOOL_CALLS_MARK)
        if not mark:
            return text, []
    try:
        calls = json.loads(raw)
    except ValueError:
        return text, []
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        return text, []
    return head, calls
