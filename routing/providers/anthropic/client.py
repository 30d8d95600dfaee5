"""`AnthropicClient`: Messages API calls, plain and streamed, over an `anthropic.AsyncAnthropic`."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anthropic
import httpx2

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

MESSAGES_PATH = "/v1/messages"


class AnthropicClient:
    def __init__(self, sdk_client: anthropic.AsyncAnthropic, *, timeout_cap: float | None = None) -> None:
        self.sdk_client = sdk_client
        self._create: Any = sdk_client.messages.create
        self._post: Any = sdk_client.post
        memoize_urls(sdk_client)
        self._timeout_cap = timeout_cap or float("inf")

    def _timeout(self, request: ProviderRequest) -> float:
        return min(request.timeout_s, self._timeout_cap)

    async def complete(self, request: ProviderRequest) -> Completion:
        params = request_params(request)
        options = {"timeout": self._timeout(request), "idempotency_key": idempotency_key_new()}
        response = await self._post(MESSAGES_PATH, body=params, cast_to=httpx2.Response, options=options)
        return completion_from_anthropic_json(response.content)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[str | ToolCallDelta | StreamEnd, None]:
        params = request_params(request)
        params["stream"] = True
        params["timeout"] = self._timeout(request)
        sdk_stream = await self._create(**params)
        counts = dict.fromkeys(INPUT_FIELDS, 0)
        output_tokens = 0
        stop_reason: str | None = None
        finished = False
        # content block index → (our tool call index, whether argument text came)
        tool_blocks: dict[int, list[Any]] = {}
        calls: list[dict[str, Any]] = []
        try:
            async for event in sdk_stream:
                kind = event.type
                if kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        yield delta.text
                    elif delta.type == "input_json_delta" and event.index in tool_blocks:
                        entry = tool_blocks[event.index]
                        if delta.partial_json:
                            entry[1] = True
                            calls[entry[0]]["function"]["arguments"] += delta.partial_json
                            yield ToolCallDelta(index=entry[0], arguments=delta.partial_json)
                elif kind == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        index = len(calls)
                        tool_blocks[event.index] = [index, False]
                        calls.append(
                            {
                                "id": block.id,
                                "type": "function",
                                "function": {"name": block.name, "arguments": ""},
                            }
                        )
                        yield ToolCallDelta(index=index, id=block.id, name=block.name)
                elif kind == "content_block_stop":
                    stopped = tool_blocks.get(event.index)
                    if stopped is not None and not stopped[1]:
                        # A call without arguments: its arguments are still a JSON object.
                        calls[stopped[0]]["function"]["arguments"] = "{}"
                        yield ToolCallDelta(index=stopped[0], arguments="{}")
                elif kind == "message_start":
                    input_counts_merge(counts, event.message.usage)
                    output_tokens = event.message.usage.output_tokens or 0
                elif kind == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    if event.usage is not None:
                        # Cumulative counts: any field present supersedes message_start's.
                        input_counts_merge(counts, event.usage)
                        if event.usage.output_tokens is not None:
                            output_tokens = event.usage.output_tokens
                elif kind == "message_stop":
                    finished = True
        finally:
            # Early close or cancellation: closing the response drops the upstream request.
            await sdk_stream.close()
        if not finished:
            raise TransientError("The stream ended before the model finished its answer.")
        finish_reason = finish_reason_from_anthropic(stop_reason)
        if finish_reason == "content_filter":
            raise ModelPermanentError("The model refused to answer (stop_reason: refusal).")
        if calls and finish_reason == "stop":
            finish_reason = "tool_calls"
        usage = Usage(
            input_tokens=sum(counts.values()),
            output_tokens=output_tokens,
            cached_tokens=counts["cache_read_input_tokens"],
        )
        yield StreamEnd(finish_reason=finish_reason, usage=usage, tool_calls=tool_arguments_check(calls))

    async def aclose(self) -> None:
        await self.sdk_client.close()
