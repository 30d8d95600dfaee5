"""The OpenAI chat wire read without the SDK's models: SSE events, chunks, completions, usage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import orjson
from openai import APIError

from routing.errors import ModelPermanentError, TransientError
from routing.providers.base import Choice, Completion, ToolCallDelta, Usage

# A run of 19 digits: maybe an integer beyond 64 bits, which orjson reads as a float (json: exact).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def json_read(data: bytes) -> Any:
    """`json.loads(data)`, through orjson (several times faster) when it reads the same: what
    orjson refuses (NaN, Infinity, a lone surrogate escape, invalid UTF-8) and integers
    beyond 64 bits are left to json, which then accepts or refuses them as ever."""
    if not _LONG_DIGITS.search(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


# After `data: [DONE]` the rest of the body (the chunked terminator) is read so the
# connection can be reused, for at most this long (the SDK's own stream does the same).
DRAIN_S = 0.1


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    with contextlib.suppress(TimeoutError, httpx2.HTTPError, ssl.SSLError):
        async with asyncio.timeout(DRAIN_S):
            async for _ in chunks:
                pass


class _SSELines:
    """Server-sent events' lines, as the WHATWG rules split them: lines end with LF, CRLF or
    CR, even split across network reads; the last, unfinished line waits for the next read
    (and is dropped if the body ends there, as the SDKs' decoders drop it)."""

    __slots__ = ("_cr", "_rest")

    def __init__(self) -> None:
        self._rest = b""
        self._cr = False  # the last read ended with CR: a LF starting the next one is its pair

    def _lines(self, chunk: bytes) -> list[bytes]:
        """The lines this network read completes, in order."""
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
        return lines


class SSEDecoder(_SSELines):
    """Server-sent events → the `data` of each event, as bytes (what a chat stream needs of
    the WHATWG rules): `data:` lines are joined with LF; a blank line ends an event; comments
    and the other fields (`event`, `id`, `retry`) are ignored; an event the body ends in the
    middle of is dropped (as the SDK's decoder does)."""

    __slots__ = ("_data",)

    def __init__(self) -> None:
        super().__init__()
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        """The events completed by this network read, in order."""
        events: list[bytes] = []
        data = self._data
        for line in self._lines(chunk):
            if not line:
                if data:
                    events.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data.clear()
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
        return events


class NamedSSEDecoder(_SSELines):
    """Server-sent events → (event name or None, data) pairs, for a wire whose events are told
    apart by name (Anthropic's): as `SSEDecoder`, and an `event:` line names the event it is
    in; an event with a name and no data is passed on too (with b""), as the SDKs' decoders
    pass it."""

    __slots__ = ("_data", "_event")

    def __init__(self) -> None:
        super().__init__()
        self._data: list[bytes] = []
        self._event: bytes | None = None

    def feed(self, chunk: bytes) -> list[tuple[bytes | None, bytes]]:
        """The events completed by this network read, in order."""
        events: list[tuple[bytes | None, bytes]] = []
        data = self._data
        for line in self._lines(chunk):
            if not line:
                if data or self._event is not None:
                    events.append((self._event, data[0] if len(data) == 1 else b"\n".join(data)))
                    data.clear()
                    self._event = None
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line.startswith(b"event:"):
                self._event = line[7:] if line[6:7] == b" " else line[6:]
        return events


def stream_chunk_from_openai_json(data: bytes, response: Any) -> dict[str, Any]:
    """One chat completion chunk (an SSE event's JSON) → the parsed dict.

    An event we cannot read is transient; an `{"error": …}` event raises the SDK's own
    `APIError`, as its stream does, so the transport maps it the same way (mid-stream error:
    transient, or model-permanent for a content filter or an over-long context)."""
    try:
        chunk = json_read(data)
    except ValueError:
        preview = data[:200].decode("utf-8", "replace")
        raise TransientError(f"The provider sent a stream event we could not read: {preview!r}") from None
    if not isinstance(chunk, dict):
        preview = data[:200].decode("utf-8", "replace")
        raise TransientError(f"The provider sent a stream event we could not read: {preview!r}")
    error = chunk.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else None
        if not message or not isinstance(message, str):
            message = "An error occurred during streaming"
        raise APIError(message=message, request=response.request, body=error)
    return chunk


def completion_from_openai_json(content: bytes) -> Completion:
    """An OpenAI chat completion body (JSON bytes) → Completion (choices 1… of `n > 1` in
    `more_choices`, in index order).

    A body we cannot read, one with no choices, or a tool call we cannot read is transient
    (another try or model may answer); a content-filtered answer is model-permanent."""
    try:
        data = json_read(content)
        choices = data.get("choices")
    except (ValueError, AttributeError):
        preview = content[:200].decode("utf-8", "replace")
        raise TransientError(f"The provider sent an answer we could not read: {preview!r}") from None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise TransientError("The provider answered with no choices.")
    if len(choices) > 1:
        choices = sorted(
            (c for c in choices if isinstance(c, dict)),
            key=lambda c: c.get("index") if isinstance(c.get("index"), int) else 0,
        )
    first = _choice(choices[0])
    if first.finish_reason == "content_filter":
        raise ModelPermanentError("The provider's content filter blocked the answer.")
    return Completion(
        text=first.text,
        finish_reason=first.finish_reason,
        usage=usage_from_openai_dict(data.get("usage")),
        tool_calls=first.tool_calls,
        logprobs=first.logprobs,
        more_choices=[_choice(c) for c in choices[1:]] if len(choices) > 1 else [],
    )


def _choice(choice: dict[str, Any]) -> Choice:
    finish_reason = choice.get("finish_reason")
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    raw_calls = message.get("tool_calls") if isinstance(message, dict) else None
    calls = tool_calls_from_openai(raw_calls) if raw_calls else []
    if calls and finish_reason == "stop":
        finish_reason = "tool_calls"  # some OpenAI-compatible servers say "stop"
    logprobs = choice.get("logprobs")
    return Choice(
        text=text if isinstance(text, str) else "",
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        tool_calls=calls,
        logprobs=logprobs if isinstance(logprobs, dict) else None,
    )


def tool_calls_from_openai(raw: Any) -> list[dict[str, Any]]:
    """An answer's `message.tool_calls` in the canonical shape; TransientError (a malformed
    answer: another try may be well-formed) for a call without a name or whose arguments are
    not JSON."""
    if not isinstance(raw, list):
        raise TransientError("The provider sent tool calls we could not read (not a list).")
    calls: list[dict[str, Any]] = []
    for call in raw:
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise TransientError("The provider sent a tool call without a function name.")
        arguments = function.get("arguments")  # type: ignore[union-attr]
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments, ensure_ascii=False)
        elif not isinstance(arguments, str):
            arguments = "{}" if arguments is None else str(arguments)
        tool_arguments_check(name, arguments)
        ident = call.get("id")  # type: ignore[union-attr]
        calls.append(
            {
                "id": ident if isinstance(ident, str) and ident else f"call_{len(calls)}",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        )
    return calls


def tool_arguments_check(name: str, arguments: str) -> None:
    """TransientError when a tool call's arguments are not a JSON object ("" counts as {})."""
    if not arguments.strip():
        return
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise TransientError(
            f"The provider sent a call of tool {name!r} whose arguments are not a JSON object: "
            f"{arguments[:120]!r}"
        )


def tool_call_deltas_from_openai(raw: Any) -> list[ToolCallDelta]:
    """A stream chunk's `delta.tool_calls` → ToolCallDelta pieces (unreadable entries skipped)."""
    if not isinstance(raw, list):
        return []
    deltas = []
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        index = entry.get("index")
        function = entry.get("function")
        function = function if isinstance(function, dict) else {}
        ident, name, arguments = entry.get("id"), function.get("name"), function.get("arguments")
        deltas.append(
            ToolCallDelta(
                index=index if isinstance(index, int) and not isinstance(index, bool) else 0,
                id=ident if isinstance(ident, str) and ident else None,
                name=name if isinstance(name, str) and name else None,
                arguments=arguments if isinstance(arguments, str) else "",
            )
        )
    return deltas


def usage_from_openai_dict(usage: Any) -> Usage:
    """OpenAI usage (parsed JSON) → ours. `input_tokens` includes cached prompt tokens (OpenAI
    counts them in prompt_tokens); `cached_tokens` says how many of them were cache reads;
    `reasoning_tokens` how many of the completion tokens were spent reasoning."""
    if not isinstance(usage, dict):
        return Usage()
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    completion_details = usage.get("completion_tokens_details")
    reasoning = completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else None
    return Usage(
        input_tokens=_count(usage.get("prompt_tokens")),
        output_tokens=_count(usage.get("completion_tokens")),
        cached_tokens=_count(cached),
        reasoning_tokens=_count(reasoning),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0
