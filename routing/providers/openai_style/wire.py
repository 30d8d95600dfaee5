"""The OpenAI chat wire read without the SDK's models: SSE events, chunks, completions, usage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx2

from routing.errors import ModelPermanentError, TransientError
from routing.providers.base import Completion, Usage

# After `data: [DONE]` the rest of the body (the chunked terminator) is read so the
# connection can be reused, for at most this long (the SDK's own stream does the same).
DRAIN_S = 0.1


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    with contextlib.suppress(TimeoutError, httpx2.HTTPError, ssl.SSLError):
        async with asyncio.timeout(DRAIN_S):
            async for _ in chunks:
                pass


class SSEDecoder:
    """Server-sent events → the `data` of each event, as bytes (what a chat stream needs of
    the WHATWG rules): lines end with LF, CRLF or CR, even split across network reads;
    `data:` lines are joined with LF; a blank line ends an event; comments and the other
    fields (`event`, `id`, `retry`) are ignored; an event the body ends in the middle of is
    dropped (as the SDK's decoder does)."""

    __slots__ = ("_cr", "_data", "_rest")

    def __init__(self) -> None:
        self._rest = b""
        self._data: list[bytes] = []
        self._cr = False  # the last read ended with CR: a LF starting the next one is its pair

    def feed(self, chunk: bytes) -> list[bytes]:
        """The events completed by this network read, in order."""
        if self._cr:
            self._cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self._rest:
            chunk = self._rest + chunk
        lines = chunk.split(b"\n")
        self._rest = lines.pop()
        events: list[bytes] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data.clear()
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
        return events


def stream_chunk_from_openai_json(data: bytes, response: Any) -> dict[str, Any]:
    """One chat completion chunk (an SSE event's JSON) → the parsed dict.

    An event we cannot read is transient; an `{"error": …}` event raises the SDK's own
    `APIError`, as its stream does, so the transport maps it the same way (mid-stream error:
    transient, or model-permanent for a content filter or an over-long context)."""
    try:
        chunk = json.loads(data)
    except ValueError:
        preview = data[:200].decode("utf-8", "replace")
        raise TransientError(f"The provider sent a stream event we could not read: {preview!r}") from None
    if not isinstance(chunk, dict):
        preview = data[:200].decode("utf-8", "replace")
        raise TransientError(f"The provider sent a stream event we could not read: {preview!r}")
    error = chunk.get("error")
    if error:
        from openai import APIError

        message = error.get("message") if isinstance(error, dict) else None
        if not message or not isinstance(message, str):
            message = "An error occurred during streaming"
        raise APIError(message=message, request=response.request, body=error)
    return chunk


def completion_from_openai_json(content: bytes) -> Completion:
    """An OpenAI chat completion body (JSON bytes) → Completion.

    A body we cannot read, or one with no choices, is transient (another try or model may
    answer); a content-filtered answer is model-permanent."""
    try:
        data = json.loads(content)
        choices = data.get("choices")
    except (ValueError, AttributeError):
        preview = content[:200].decode("utf-8", "replace")
        raise TransientError(f"The provider sent an answer we could not read: {preview!r}") from None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise TransientError("The provider answered with no choices.")
    choice = choices[0]
    finish_reason = choice.get("finish_reason")
    if finish_reason == "content_filter":
        raise ModelPermanentError("The provider's content filter blocked the answer.")
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    return Completion(
        text=text if isinstance(text, str) else "",
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        usage=usage_from_openai_dict(data.get("usage")),
    )


def usage_from_openai_dict(usage: Any) -> Usage:
    """OpenAI usage (parsed JSON) → ours. `input_tokens` includes cached prompt tokens (OpenAI
    counts them in prompt_tokens); `cached_tokens` says how many of them were cache reads."""
    if not isinstance(usage, dict):
        return Usage()
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        input_tokens=_count(usage.get("prompt_tokens")),
        output_tokens=_count(usage.get("completion_tokens")),
        cached_tokens=_count(cached),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0
