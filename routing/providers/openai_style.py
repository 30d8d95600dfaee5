"""The client for every kind that speaks OpenAI chat completions through the `openai` SDK.

`routing/providers/{openai,azure_openai,gemini,openai_compatible}/` each build an SDK client
their way and wrap it in `OpenAIStyleClient`. SDK retries are off (the engine retries);
exceptions propagate raw and are mapped by the transport chokepoint.

Non-streamed completions go through the SDK client's documented low-level request method
(`client.post(path, body=..., cast_to=httpx2.Response, options={"timeout": ...})`) and we
read the JSON ourselves: the same client, auth, headers, Azure deployment paths, status
errors and timeouts, without the SDK walking our plain-dict params through its TypedDict
transform and building a pydantic model of the answer (together ~0.4 ms of a ~1.4 ms call
against a local server; see docs/providers.md). Streams make the same request with
`stream=True` and read the SSE body themselves (`SSEDecoder`, `json.loads` per event) instead
of the SDK building a pydantic chunk model per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import ssl
import threading
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, TypeVar

import httpx2
from pydantic import BaseModel

from routing.engine.types import Usage
from routing.errors import ModelPermanentError, ProviderKeyMissing, TransientError
from routing.providers.base import Completion, ProviderRequest, ProviderSpec, StreamEnd
from routing.sampling import NO_SAMPLING, SAMPLING_FIELDS, SAMPLING_ORDER, SamplingOptions
from routing.schemas import NetworkOptions

OptionsT = TypeVar("OptionsT", bound=BaseModel)

# The chat completions path, relative to the client's base URL (Azure's client rewrites it
# to /deployments/{model}/chat/completions).
CHAT_PATH = "/chat/completions"
# Used for the client's default timeout; every request passes its own (request.timeout_s).
DEFAULT_CLIENT_TIMEOUT_S = 600.0
# Local servers (Ollama, vLLM) usually take no key; the SDK still wants one.
PLACEHOLDER_KEY = "no-key-needed"


def api_key_for(spec: ProviderSpec, *, optional: bool = False) -> str:
    """The secret from the variable `spec.api_key_env` names, read now (never logged).

    Raises ProviderKeyMissing naming the variable when it is unset. `optional` kinds (local
    servers) with no variable named get a placeholder key instead."""
    if not spec.api_key_env:
        if optional:
            return PLACEHOLDER_KEY
        raise ProviderKeyMissing(
            f"Provider {spec.name} has no API key variable configured: name one in its settings."
        )
    key = os.environ.get(spec.api_key_env, "")
    if not key:
        raise ProviderKeyMissing(
            f"Provider {spec.name} needs its API key: set the environment variable {spec.api_key_env}."
        )
    return key


def network_options(spec: ProviderSpec) -> NetworkOptions:
    return parse_options(spec, NetworkOptions)


def parse_options(spec: ProviderSpec, schema: type[OptionsT]) -> OptionsT:
    """The provider's options, validated; invalid ones make the model unusable (no retry)."""
    from pydantic import ValidationError

    try:
        return schema.model_validate(spec.options or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}" for err in exc.errors()
        )
        raise ModelPermanentError(f"Provider {spec.name} has invalid options: {problems}") from None


def sdk_client_kwargs(spec: ProviderSpec, options: NetworkOptions, *, sdk: Any) -> dict[str, Any]:
    """Keyword arguments every SDK client gets: no retries, a timeout, headers, and an HTTP
    client sharing the process's one TLS context (loading CA certificates costs ~20 ms, and
    clients are made per event loop), with the pool limit from the options.

    `sdk` is the `openai` or `anthropic` module (both expose DefaultAsyncHttpxClient and
    DefaultAioHttpClient). The HTTP client is the SDK's aiohttp-backed one when aiohttp is
    installed (see `http_client_kind`), else its default httpx2 one."""
    import httpx2

    http_kwargs: dict[str, Any] = {"verify": shared_ssl_context()}
    if options.max_connections:
        http_kwargs["limits"] = httpx2.Limits(
            max_connections=options.max_connections,
            max_keepalive_connections=min(options.max_connections, 100),
        )
    http_class = sdk.DefaultAioHttpClient if http_client_kind() == "aiohttp" else sdk.DefaultAsyncHttpxClient
    kwargs: dict[str, Any] = {
        "max_retries": 0,
        "timeout": options.timeout_s or DEFAULT_CLIENT_TIMEOUT_S,
        "http_client": http_class(**http_kwargs),
    }
    if options.default_headers:
        kwargs["default_headers"] = dict(options.default_headers)
    return kwargs


def http_client_kind() -> str:
    """`aiohttp` or `httpx`: the HTTP layer under the SDK clients.

    The SDKs' aiohttp transport (`openai.DefaultAioHttpClient`, `anthropic.DefaultAioHttpClient`;
    the `aiohttp` extra) takes ~0.25 ms less per call than their default httpx2 +
    httpcore2 stack and does not slow down as its pool grows. It is used when aiohttp is
    installed, unless `settings.ORCHESTRATOR["PROVIDER_HTTP"] = "httpx"`."""
    global _http_kind
    if _http_kind is None:
        wanted = "aiohttp"
        try:
            from django.conf import settings

            wanted = str(getattr(settings, "ORCHESTRATOR", {}).get("PROVIDER_HTTP", "aiohttp"))
        except Exception:  # settings not configured (a plain script): the default
            pass
        if wanted == "aiohttp":
            try:
                import aiohttp  # noqa: F401
            except ImportError:
                wanted = "httpx"
        _http_kind = "aiohttp" if wanted == "aiohttp" else "httpx"
    return _http_kind


_http_kind: str | None = None


_ssl_context: ssl.SSLContext | None = None
_ssl_lock = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for every provider client (SSLContext is thread-safe to share)."""
    global _ssl_context
    if _ssl_context is None:
        with _ssl_lock:
            if _ssl_context is None:
                import httpx2

                _ssl_context = httpx2.create_ssl_context()
    return _ssl_context


# The sampling options an OpenAI-style kind sends by default (all of them, as OpenAI names them).
OPENAI_SAMPLING_FIELDS = SAMPLING_FIELDS


def sampling_params(
    options: SamplingOptions, fields: frozenset[str] = OPENAI_SAMPLING_FIELDS
) -> dict[str, Any]:
    """The chat-completions parameters for `options`: only those set and among `fields`."""
    params: dict[str, Any] = {}
    for name in SAMPLING_ORDER:
        value = getattr(options, name)
        if value is None or value == () or name not in fields:
            continue
        params[name] = list(value) if name == "stop" else value
    return params


class OpenAIStyleClient:
    """Chat completions over an `openai.AsyncOpenAI` (or AsyncAzureOpenAI) client."""

    def __init__(
        self,
        sdk_client: Any,
        *,
        options: NetworkOptions | None = None,
        max_tokens_param: str = "max_tokens",
        include_usage: bool = True,
        sampling_fields: frozenset[str] = OPENAI_SAMPLING_FIELDS,
    ) -> None:
        self.sdk_client = sdk_client
        self._post = sdk_client.post
        memoize_urls(sdk_client)
        self._timeout_cap = (options.timeout_s if options else None) or float("inf")
        self._max_tokens_param = max_tokens_param
        self._stream_options = {"include_usage": True} if include_usage else None
        self._sampling_fields = sampling_fields

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
        return params

    async def complete(self, request: ProviderRequest) -> Completion:
        params = self._params(request)
        timeout = params.pop("timeout")
        # Our own idempotency key: the SDK would draw a uuid4 (an os.urandom call) per request.
        options = {"timeout": timeout, "idempotency_key": idempotency_key_new()}
        response = await self._post(CHAT_PATH, body=params, cast_to=httpx2.Response, options=options)
        return completion_from_openai_json(response.content)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[str | StreamEnd, None]:
        params = self._params(request)
        options = {"timeout": params.pop("timeout"), "idempotency_key": idempotency_key_new()}
        params["stream"] = True
        if self._stream_options is not None:
            params["stream_options"] = self._stream_options
        # The same request `create(stream=True)` makes (status errors raised before the body
        # is read), answered with the raw response: we read its SSE ourselves.
        response = await self._post(
            CHAT_PATH, body=params, cast_to=httpx2.Response, options=options, stream=True, stream_cls=None
        )
        finish_reason: str | None = None
        usage: Usage | None = None
        events = SSEDecoder()
        chunks = response.aiter_bytes()
        done = False
        try:
            try:
                async for raw in chunks:
                    for data in events.feed(raw):
                        if data.startswith(b"[DONE]"):
                            done = True
                            break
                        chunk = stream_chunk_from_openai_json(data, response)
                        if isinstance(chunk.get("usage"), dict):
                            usage = usage_from_openai_dict(chunk["usage"])
                        choices = chunk.get("choices")
                        if not choices or not isinstance(choices, list):
                            continue
                        for choice in choices:
                            if not isinstance(choice, dict) or choice.get("index"):
                                continue
                            delta = choice.get("delta")
                            if delta:
                                content = delta.get("content") if isinstance(delta, dict) else None
                                if content and isinstance(content, str):
                                    yield content
                            if choice.get("finish_reason"):
                                finish_reason = str(choice["finish_reason"])
                    if done:
                        break
                if done:
                    await _drain(chunks)
            except httpx2.TimeoutException as exc:  # wrapped as the SDK's own stream wraps them
                from openai import APITimeoutError

                raise APITimeoutError(request=response.request) from exc
            except (httpx2.RequestError, ssl.SSLError) as exc:
                from openai import APIConnectionError

                raise APIConnectionError(request=response.request) from exc
        finally:
            # Early close or cancellation: closing the response drops the upstream request
            # (a response not read to its end is not put back in the pool).
            await chunks.aclose()
            await response.aclose()
        if finish_reason is None:
            raise TransientError("The stream ended before the model finished its answer.")
        if finish_reason == "content_filter":
            raise ModelPermanentError("The provider's content filter stopped the answer.")
        yield StreamEnd(finish_reason=finish_reason, usage=usage or Usage())

    async def aclose(self) -> None:
        await self.sdk_client.close()


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
