"""`OpenAIStyleClient`: chat completions (plain and streamed) over an OpenAI SDK client."""

from __future__ import annotations

import functools
import os
import random
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

import httpx2
from openai import APIConnectionError, APITimeoutError

from routing.errors import ModelPermanentError, TransientError
from routing.providers.base import (
    NO_CHAT_OPTIONS,
    Completion,
    EmbeddingRequest,
    Embeddings,
    ProviderRequest,
    StreamEnd,
    StreamItem,
    ToolCallDelta,
    Usage,
    tool_calls_assemble,
)
from routing.providers.batching import batch_max_for, batches_embed
from routing.providers.openai_style.embed import (
    EMBEDDINGS_PATH,
    OPENAI_EMBED_BATCH_MAX,
    embeddings_from_openai_json,
    embeddings_params,
    openai_embed,
)
from routing.providers.openai_style.lean import lean_body_encode, lean_http_for
from routing.providers.openai_style.setup import (
    CHAT_PATH,
    OPENAI_SAMPLING_FIELDS,
    chat_params,
    sampling_params,
)
from routing.providers.openai_style.wire import (
    SSEDecoder,
    _drain,
    completion_from_openai_json,
    stream_chunk_from_openai_json,
    tool_arguments_check,
    tool_call_deltas_from_openai,
    usage_from_openai_dict,
)
from routing.providers.options import NetworkOptions
from routing.sampling import NO_SAMPLING


class OpenAIStyleClient:
    """Chat completions and embeddings over an `openai.AsyncOpenAI` (or AsyncAzureOpenAI) client."""

    def __init__(
        self,
        sdk_client: Any,
        *,
        options: NetworkOptions | None = None,
        max_tokens_param: str = "max_tokens",
        include_usage: bool = True,
        sampling_fields: frozenset[str] = OPENAI_SAMPLING_FIELDS,
        embed_batch_max: int = OPENAI_EMBED_BATCH_MAX,
    ) -> None:
        self.sdk_client = sdk_client
        self._post = sdk_client.post
        memoize_urls(sdk_client)
        self._timeout_cap = (options.timeout_s if options else None) or float("inf")
        self._max_tokens_param = max_tokens_param
        self._stream_options = {"include_usage": True} if include_usage else None
        self._sampling_fields = sampling_fields
        self._embed_batch_max = batch_max_for(options.embed_batch_max if options else None, embed_batch_max)
        # Chat completions and embeddings over a plain aiohttp session when the client allows
        # it (lean.py).
        self.lean = lean_http_for(sdk_client, options)

    def _params(self, request: ProviderRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model_id,
            "messages": request.messages,
            "timeout": min(request.timeout_s, self._timeout_cap),
        }
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.max_tokens is not None:
            params[self._max_tokens_param] = request.max_tokens
        if request.sampling is not NO_SAMPLING:
            params.update(sampling_params(request.sampling, self._sampling_fields))
        if request.chat is not NO_CHAT_OPTIONS:
            params.update(chat_params(request.chat))
        return params

    async def complete(self, request: ProviderRequest) -> Completion:
        params = self._params(request)
        timeout = params.pop("timeout")
        lean = self.lean
        target = await lean.target(CHAT_PATH, request.model_id) if lean is not None else None
        if target is not None:
            key = idempotency_key_new() if target.idempotency_header else ""
            content = await lean.complete(target, lean_body_encode(params), timeout, key)  # type: ignore[union-attr]
            return completion_from_openai_json(content)
        # Our own idempotency key: the SDK would draw a uuid4 (an os.urandom call) per request.
        options = {"timeout": timeout, "idempotency_key": idempotency_key_new()}
        response = await self._post(CHAT_PATH, body=params, cast_to=httpx2.Response, options=options)
        return completion_from_openai_json(response.content)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[StreamItem, None]:
        params = self._params(request)
        timeout = params.pop("timeout")
        params["stream"] = True
        if self._stream_options is not None:
            params["stream_options"] = self._stream_options
        lean = self.lean
        target = await lean.target(CHAT_PATH, request.model_id) if lean is not None else None
        if target is not None:
            key = idempotency_key_new() if target.idempotency_header else ""
            opened = await lean.stream(target, lean_body_encode(params), timeout, key)  # type: ignore[union-attr]
            try:
                # aiohttp's errors (a cut body, a socket timeout) travel raw: the chokepoint
                # reads them as it reads those under the SDK's exceptions.
                async for item in _stream_items(opened.chunks(), opened, opened.drain):
                    yield item
            finally:
                # Early close or cancellation: the connection is dropped, not reused.
                opened.close()
            return
        options = {"timeout": timeout, "idempotency_key": idempotency_key_new()}
        # The same request `create(stream=True)` makes (status errors raised before the body
        # is read), answered with the raw response: we read its SSE ourselves.
        response = await self._post(
            CHAT_PATH, body=params, cast_to=httpx2.Response, options=options, stream=True, stream_cls=None
        )
        chunks = response.aiter_bytes()
        try:
            try:
                async for item in _stream_items(chunks, response, functools.partial(_drain, chunks)):
                    yield item
            except httpx2.TimeoutException as exc:  # wrapped as the SDK's own stream wraps them
                raise APITimeoutError(request=response.request) from exc
            except (httpx2.RequestError, ssl.SSLError) as exc:
                raise APIConnectionError(request=response.request) from exc
        finally:
            # Early close or cancellation: closing the response drops the upstream request
            # (a response not read to its end is not put back in the pool).
            await chunks.aclose()
            await response.aclose()

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """Embeddings (OpenAI's wire, embed.py), a batch above the limit split in order."""
        timeout_s = min(request.timeout_s, self._timeout_cap)

        async def send(part: EmbeddingRequest) -> Embeddings:
            lean = self.lean
            target = await lean.target(EMBEDDINGS_PATH, part.model_id) if lean is not None else None
            if target is not None:
                key = idempotency_key_new() if target.idempotency_header else ""
                body = lean_body_encode(embeddings_params(part))
                content = await lean.complete(target, body, timeout_s, key)  # type: ignore[union-attr]
                return embeddings_from_openai_json(content, count=len(part.inputs))
            return await openai_embed(self.sdk_client, part, timeout_s, idempotency_key_new())

        return await batches_embed(request, batch_max=self._embed_batch_max, send=send)

    async def aclose(self) -> None:
        if self.lean is not None:
            await self.lean.aclose()
        await self.sdk_client.close()


async def _stream_items(
    chunks: AsyncIterator[bytes], origin: Any, drain: Callable[[], Awaitable[None]]
) -> AsyncGenerator[StreamItem, None]:
    """A chat stream's SSE body → text deltas and tool-call pieces, then one StreamEnd.

    `origin` has the `.request` the SDK's APIError for an error event names; `drain` reads
    the rest of the body after `[DONE]` so the connection can be reused."""
    finish_reason: str | None = None
    usage: Usage | None = None
    pieces: list[ToolCallDelta] = []
    events = SSEDecoder()
    done = False
    async for raw in chunks:
        for data in events.feed(raw):
            if data.startswith(b"[DONE]"):
                done = True
                break
            chunk = stream_chunk_from_openai_json(data, origin)
            if isinstance(chunk.get("usage"), dict):
                usage = usage_from_openai_dict(chunk["usage"])
            choices = chunk.get("choices")
            if not choices or not isinstance(choices, list):
                continue
            for choice in choices:
                if not isinstance(choice, dict) or choice.get("index"):
                    continue
                delta = choice.get("delta")
                if delta and isinstance(delta, dict):
                    content = delta.get("content")
                    if content and isinstance(content, str):
                        yield content
                    if delta.get("tool_calls"):
                        for piece in tool_call_deltas_from_openai(delta["tool_calls"]):
                            pieces.append(piece)
                            yield piece
                if choice.get("finish_reason"):
                    finish_reason = str(choice["finish_reason"])
        if done:
            break
    if done:
        await drain()
    if finish_reason is None:
        raise TransientError("The stream ended before the model finished its answer.")
    if finish_reason == "content_filter":
        raise ModelPermanentError("The provider's content filter stopped the answer.")
    calls = tool_calls_assemble(pieces) if pieces else []
    for call in calls:
        tool_arguments_check(call["function"]["name"], call["function"]["arguments"])
    if calls and finish_reason == "stop":
        finish_reason = "tool_calls"  # some OpenAI-compatible servers say "stop"
    yield StreamEnd(finish_reason=finish_reason, usage=usage or Usage(), tool_calls=calls)


_keys = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _keys.seed(os.urandom(32)))


def idempotency_key_new() -> str:
    """A random per-request key, the same shape as the SDK's own (which it sends on every
    POST); drawn from a generator seeded once from the OS, and again in a forked child."""
    return f"stainless-python-retry-{_keys.getrandbits(128):032x}"


MEMO_URLS = 64


def memoize_urls(sdk_client: Any) -> None:
    """Cache the SDK client's path → absolute URL step (`_prepare_url`), which parses URLs
    with httpx2's pure-Python parser on every request (~0.1 ms). The result depends only on
    the path and the client's fixed base URL (Azure: and its fixed deployment), and httpx2
    URLs are immutable, so one parse per path is enough. Skipped if the SDK changes shape."""
    prepare = getattr(sdk_client, "_prepare_url", None)
    if prepare is None or not callable(prepare):
        return
    cache: dict[str, Any] = {}

    def prepare_url(url: str) -> Any:
        hit = cache.get(url)
        if hit is None:
            hit = prepare(url)
            if len(cache) < MEMO_URLS:
                cache[url] = hit
        return hit

    sdk_client._prepare_url = prepare_url
