"""`AnthropicClient`: Messages API calls, plain and streamed, over an `anthropic.AsyncAnthropic`.

Both take the lean HTTP path by default (`routing.providers.openai_style.lean`: the request the
SDK would send to `/v1/messages`, its URL and headers — the key, `anthropic-version`, the
provider's `default_headers` — read once per model from the SDK client, posted on a plain
connection pool; status errors and stream error events are the SDK's own exceptions). Where
it does not apply, plain calls go through the SDK client's low-level `post` and streams
through `messages.create(stream=True)`. Either way a stream's events are read as dicts by one
reader (`_stream_items`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import anthropic
import httpx2
from anthropic._models import FinalRequestOptions

from routing.errors import ModelPermanentError, TransientError
from routing.providers.anthropic.params import request_params
from routing.providers.anthropic.wire import (
    INPUT_FIELDS,
    completion_from_anthropic_json,
    finish_reason_from_anthropic,
    input_counts_merge,
    tool_arguments_check,
)
from routing.providers.base import Completion, ProviderRequest, StreamEnd, ToolCallDelta, Usage
from routing.providers.openai_style import idempotency_key_new, memoize_urls
from routing.providers.openai_style.lean import LeanStream, lean_body_encode, lean_http_for
from routing.providers.openai_style.wire import NamedSSEDecoder, json_read
from routing.providers.options import NetworkOptions

MESSAGES_PATH = "/v1/messages"

StreamItem = str | ToolCallDelta | StreamEnd


class AnthropicClient:
    def __init__(
        self,
        sdk_client: anthropic.AsyncAnthropic,
        *,
        timeout_cap: float | None = None,
        options: NetworkOptions | None = None,
    ) -> None:
        self.sdk_client = sdk_client
        self._create: Any = sdk_client.messages.create
        self._post: Any = sdk_client.post
        memoize_urls(sdk_client)
        self._timeout_cap = timeout_cap or float("inf")
        # Messages over a plain connection pool when the client allows it (lean.py).
        self.lean = lean_http_for(sdk_client, options, request_options=FinalRequestOptions)

    def _timeout(self, request: ProviderRequest) -> float:
        return min(request.timeout_s, self._timeout_cap)

    async def complete(self, request: ProviderRequest) -> Completion:
        params = request_params(request)
        timeout = self._timeout(request)
        lean = self.lean
        target = await lean.target(MESSAGES_PATH, request.model_id) if lean is not None else None
        if target is not None:
            key = idempotency_key_new() if target.idempotency_header else ""
            content = await lean.complete(target, lean_body_encode(params), timeout, key)  # type: ignore[union-attr]
            return completion_from_anthropic_json(content)
        options = {"timeout": timeout, "idempotency_key": idempotency_key_new()}
        response = await self._post(MESSAGES_PATH, body=params, cast_to=httpx2.Response, options=options)
        return completion_from_anthropic_json(response.content)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[StreamItem, None]:
        params = request_params(request)
        params["stream"] = True
        timeout = self._timeout(request)
        lean = self.lean
        target = await lean.target(MESSAGES_PATH, request.model_id) if lean is not None else None
        if target is not None:
            key = idempotency_key_new() if target.idempotency_header else ""
            opened = await lean.stream(target, lean_body_encode(params), timeout, key)  # type: ignore[union-attr]
            try:
                # The HTTP client's errors (a cut body, a socket timeout) travel raw: the
                # chokepoint reads them as it reads those under the SDK's exceptions.
                async for item in _stream_items(_lean_events(opened)):
                    yield item
            finally:
                # Early close or cancellation: the connection is dropped, not reused.
                opened.close()
            return
        sdk_stream = await self._create(**params, timeout=timeout)
        try:
            async for item in _stream_items(_sdk_events(sdk_stream)):
                yield item
        finally:
            # Early close or cancellation: closing the response drops the upstream request.
            await sdk_stream.close()

    async def aclose(self) -> None:
        if self.lean is not None:
            await self.lean.aclose()
        await self.sdk_client.close()


async def _lean_events(opened: LeanStream) -> AsyncGenerator[dict[str, Any], None]:
    """A streamed response's events as the SDK's own stream reads them: `ping` and unnamed
    events skipped, an `error` event raised as the SDK's exception (mapped by the chokepoint
    as a mid-stream error), each other event's JSON. After `message_stop` the rest of the body
    is read (for at most a moment) so the connection goes back to the pool."""
    events = NamedSSEDecoder()
    async for raw in opened.chunks():
        for name, data in events.feed(raw):
            if name is None or name == b"ping":
                continue
            if name == b"error":
                raise _event_error(opened, data)
            if not data:
                continue
            event = json_read(data)  # what it refuses, json refuses with the SDK's own error
            if not isinstance(event, dict):
                continue
            yield event
            if event.get("type") == "message_stop":
                await opened.drain()
                return


def _event_error(opened: LeanStream, data: bytes) -> Exception:
    """The SDK's exception for an `event: error` (its message and body made as its stream
    makes them)."""
    text = data.decode()
    body: object = text
    try:
        body = json.loads(text)
        message = f"{body}"
    except ValueError:
        message = text or f"Error code: {opened.status}"
    return opened.event_error(message, body)


async def _sdk_events(sdk_stream: Any) -> AsyncGenerator[dict[str, Any], None]:
    """The SDK stream's events (its models) as the dicts they were read from."""
    async for event in sdk_stream:
        yield event if isinstance(event, dict) else event.to_dict()


async def _stream_items(events: AsyncIterator[dict[str, Any]]) -> AsyncGenerator[StreamItem, None]:
    """A Messages stream's events → text deltas and tool-call pieces, then one StreamEnd."""
    counts = dict.fromkeys(INPUT_FIELDS, 0)
    output_tokens = 0
    stop_reason: str | None = None
    finished = False
    # content block index → (our tool call index, whether argument text came)
    tool_blocks: dict[Any, list[Any]] = {}
    calls: list[dict[str, Any]] = []
    async for event in events:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            delta_kind = delta.get("type")
            if delta_kind == "text_delta":
                text = delta.get("text")
                if text and isinstance(text, str):
                    yield text
            elif delta_kind == "input_json_delta" and event.get("index") in tool_blocks:
                entry = tool_blocks[event.get("index")]
                partial = delta.get("partial_json")
                if partial and isinstance(partial, str):
                    entry[1] = True
                    calls[entry[0]]["function"]["arguments"] += partial
                    yield ToolCallDelta(index=entry[0], arguments=partial)
        elif kind == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = len(calls)
                tool_blocks[event.get("index")] = [index, False]
                ident, name = block.get("id"), block.get("name")
                calls.append({"id": ident, "type": "function", "function": {"name": name, "arguments": ""}})
                yield ToolCallDelta(index=index, id=ident, name=name)
        elif kind == "content_block_stop":
            stopped = tool_blocks.get(event.get("index"))
            if stopped is not None and not stopped[1]:
                # A call without arguments: its arguments are still a JSON object.
                calls[stopped[0]]["function"]["arguments"] = "{}"
                yield ToolCallDelta(index=stopped[0], arguments="{}")
        elif kind == "message_start":
            usage = (event.get("message") or {}).get("usage") or {}
            input_counts_merge(counts, usage)
            output_tokens = usage.get("output_tokens") or 0
        elif kind == "message_delta":
            stop_reason = (event.get("delta") or {}).get("stop_reason") or stop_reason
            usage = event.get("usage")
            if isinstance(usage, dict):
                # Cumulative counts: any field present supersedes message_start's.
                input_counts_merge(counts, usage)
                if usage.get("output_tokens") is not None:
                    output_tokens = usage["output_tokens"]
        elif kind == "message_stop":
            finished = True
    if not finished:
        raise TransientError("The stream ended before the model finished its answer.")
    finish_reason = finish_reason_from_anthropic(stop_reason)
    if finish_reason == "content_filter":
        raise ModelPermanentError("The model refused to answer (stop_reason: refusal).")
    if calls and finish_reason == "stop":
        finish_reason = "tool_calls"
    usage_end = Usage(
        input_tokens=sum(counts.values()),
        output_tokens=output_tokens,
        cached_tokens=counts["cache_read_input_tokens"],
    )
    yield StreamEnd(finish_reason=finish_reason, usage=usage_end, tool_calls=tool_arguments_check(calls))
