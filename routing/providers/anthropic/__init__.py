"""The `anthropic` kind: the Messages API through `anthropic.AsyncAnthropic`.

OpenAI-style messages are translated: system messages move to the `system` parameter,
consecutive messages of one role are merged, `max_tokens` (required by the API) defaults to
DEFAULT_MAX_TOKENS, and `temperature` is not sent (the anthropic 2.x SDK's Messages API
has no such parameter).

Sampling options: `stop` → `stop_sequences`, `response_format` json_schema → `output_config:
{"format": {"type": "json_schema", "schema": …}}` (structured outputs), `user` →
`metadata.user_id`. `top_p` is not sent (the 2.x Messages API has none, like temperature);
`seed` and the penalties have no Anthropic counterpart: ignored. `response_format`
json_object (any JSON object, no schema) has no counterpart either — structured outputs need
a schema — so `sampling_refusal` makes the engine pass the model over (a chain moves on to a
model that can; a request naming only this model is a 400 naming the field). Usage: `input_tokens` counts every prompt token (uncached + cache reads
+ cache writes, like OpenAI's prompt_tokens); `cached_tokens` the cache reads among them.

Non-streamed calls go through the SDK client's documented low-level `post` with the JSON
read by us (see `routing.providers.openai_style`): the SDK's param transform and model
building cost more than the rest of the call against a nearby server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import anthropic
import httpx2

from routing.errors import ModelPermanentError, RequestInvalidError, TransientError
from routing.providers.base import (
    NO_SAMPLING,
    Completion,
    ProviderRequest,
    ProviderSpec,
    SamplingOptions,
    StreamEnd,
    Usage,
)
from routing.providers.openai_style import (
    api_key_for,
    idempotency_key_new,
    memoize_urls,
    network_options,
    sdk_client_kwargs,
)

MESSAGES_PATH = "/v1/messages"

DEFAULT_MAX_TOKENS = 1024

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
    "model_context_window_exceeded": "length",
}


def sampling_refusal(options: SamplingOptions) -> tuple[str, str] | None:
    """(param, reason) for the options Anthropic's Messages API cannot honour, else None."""
    if options.format_type == "json_object":
        return (
            "response_format",
            "Anthropic models cannot honour response_format json_object (structured outputs "
            "need a schema: use json_schema)",
        )
    if options.format_type == "json_schema" and options.json_schema is None:
        return (
            "response_format.json_schema.schema",
            "Anthropic models need response_format.json_schema.schema for structured outputs",
        )
    return None


def sampling_params(options: SamplingOptions) -> dict[str, Any]:
    """The Messages API parameters for what Anthropic can honour of `options` (only those set)."""
    params: dict[str, Any] = {}
    if options.stop:
        params["stop_sequences"] = list(options.stop)
    schema = options.json_schema
    if schema is not None:
        params["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if options.user:
        params["metadata"] = {"user_id": options.user}
    return params


def make_client(spec: ProviderSpec) -> AnthropicClient:
    api_key = api_key_for(spec)
    options = network_options(spec)
    kwargs = sdk_client_kwargs(spec, options, sdk=anthropic)
    if spec.base_url:
        kwargs["base_url"] = spec.base_url
    sdk_client = anthropic.AsyncAnthropic(api_key=api_key, **kwargs)
    return AnthropicClient(sdk_client, timeout_cap=options.timeout_s)


class AnthropicClient:
    def __init__(self, sdk_client: anthropic.AsyncAnthropic, *, timeout_cap: float | None = None) -> None:
        self.sdk_client = sdk_client
        self._create: Any = sdk_client.messages.create
        self._post: Any = sdk_client.post
        memoize_urls(sdk_client)
        self._timeout_cap = timeout_cap or float("inf")

    def _params(self, request: ProviderRequest) -> dict[str, Any]:
        system, messages = to_anthropic_messages(request.messages)
        params: dict[str, Any] = {
            "model": request.model_id,
            "messages": messages,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "timeout": min(request.timeout_s, self._timeout_cap),
        }
        if system:
            params["system"] = system
        if request.sampling is not NO_SAMPLING:
            params.update(sampling_params(request.sampling))
        return params

    async def complete(self, request: ProviderRequest) -> Completion:
        params = self._params(request)
        options = {"timeout": params.pop("timeout"), "idempotency_key": idempotency_key_new()}
        response = await self._post(MESSAGES_PATH, body=params, cast_to=httpx2.Response, options=options)
        return completion_from_anthropic_json(response.content)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[str | StreamEnd, None]:
        params = self._params(request)
        params["stream"] = True
        sdk_stream = await self._create(**params)
        counts = dict.fromkeys(_INPUT_FIELDS, 0)
        output_tokens = 0
        stop_reason: str | None = None
        finished = False
        try:
            async for event in sdk_stream:
                kind = event.type
                if kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        yield delta.text
                elif kind == "message_start":
                    _merge_input_counts(counts, event.message.usage)
                    output_tokens = event.message.usage.output_tokens or 0
                elif kind == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    if event.usage is not None:
                        # Cumulative counts: any field present supersedes message_start's.
                        _merge_input_counts(counts, event.usage)
                        if event.usage.output_tokens is not None:
                            output_tokens = event.usage.output_tokens
                elif kind == "message_stop":
                    finished = True
        finally:
            # Early close or cancellation: closing the response drops the upstream request.
            await sdk_stream.close()
        if not finished:
            raise TransientError("The stream ended before the model finished its answer.")
        finish_reason = STOP_REASONS.get(stop_reason or "", stop_reason)
        if finish_reason == "content_filter":
            raise ModelPermanentError("The model refused to answer (stop_reason: refusal).")
        usage = Usage(
            input_tokens=sum(counts.values()),
            output_tokens=output_tokens,
            cached_tokens=counts["cache_read_input_tokens"],
        )
        yield StreamEnd(finish_reason=finish_reason, usage=usage)

    async def aclose(self) -> None:
        await self.sdk_client.close()


_INPUT_FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")


def _merge_input_counts(counts: dict[str, int], usage: Any) -> None:
    for name in _INPUT_FIELDS:
        value = getattr(usage, name, None)
        if value is not None:
            counts[name] = value


def completion_from_anthropic_json(content: bytes) -> Completion:
    """An Anthropic Messages body (JSON bytes) → Completion; an unreadable one is transient."""
    try:
        data = json.loads(content)
        blocks = data.get("content")
    except (ValueError, AttributeError):
        preview = content[:200].decode("utf-8", "replace")
        raise TransientError(f"The provider sent an answer we could not read: {preview!r}") from None
    if not isinstance(blocks, list):
        raise TransientError("The provider answered with no content.")
    text = "".join(
        b["text"]
        for b in blocks
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    )
    stop_reason = data.get("stop_reason")
    stop_reason = stop_reason if isinstance(stop_reason, str) else None
    finish_reason = STOP_REASONS.get(stop_reason or "", stop_reason)
    if finish_reason == "content_filter":
        raise ModelPermanentError("The model refused to answer (stop_reason: refusal).")
    usage = data.get("usage")
    return Completion(
        text=text,
        finish_reason=finish_reason,
        usage=usage_from_anthropic_dict(usage if isinstance(usage, dict) else {}),
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


def usage_from_anthropic(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    cache_read = getattr(usage, "cache_read_input_tokens", None) or 0
    cache_write = getattr(usage, "cache_creation_input_tokens", None) or 0
    return Usage(
        input_tokens=(usage.input_tokens or 0) + cache_read + cache_write,
        output_tokens=usage.output_tokens or 0,
        cached_tokens=cache_read,
    )


def to_anthropic_messages(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI-style messages → (system prompt, Anthropic messages)."""
    system_parts: list[str] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            text = _text_of(content)
            if text:
                system_parts.append(text)
            continue
        if role not in ("user", "assistant"):
            raise RequestInvalidError(f"Anthropic models take user and assistant messages, not {role!r}.")
        blocks = _blocks_of(content)
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    if not out:
        raise RequestInvalidError("Anthropic models need at least one user message.")
    return "\n\n".join(system_parts), out


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("text"))
    return "" if content is None else str(content)


def _blocks_of(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, list):
        blocks: list[dict[str, Any]] = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                blocks.append({"type": "text", "text": str(part.get("text", ""))})
            elif isinstance(part, dict) and part.get("type") == "image_url":
                blocks.append({"type": "image", "source": _image_source(part.get("image_url") or {})})
        return blocks or [{"type": "text", "text": ""}]
    return [{"type": "text", "text": _text_of(content)}]


def _image_source(image_url: dict[str, Any]) -> dict[str, Any]:
    url = str(image_url.get("url", ""))
    if url.startswith("data:") and ";base64," in url:
        media_type, _, data = url[len("data:") :].partition(";base64,")
        return {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "url", "url": url}
