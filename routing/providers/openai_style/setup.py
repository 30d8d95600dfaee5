"""Building an OpenAI-style SDK client: its key, options, HTTP layer and TLS context, and
the sampling parameters it sends."""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
from typing import Any, TypeVar

import httpx2
from django.conf import settings
from pydantic import BaseModel, ValidationError

from routing.errors import ModelPermanentError, ProviderKeyMissing
from routing.providers.base import ChatOptions, ProviderSpec
from routing.providers.options import NetworkOptions
from routing.sampling import SAMPLING_FIELDS, SAMPLING_ORDER, SamplingOptions

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
        with contextlib.suppress(Exception):  # settings not configured (a plain script): the default
            wanted = str(getattr(settings, "ORCHESTRATOR", {}).get("PROVIDER_HTTP", "aiohttp"))
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


def chat_params(chat: ChatOptions) -> dict[str, Any]:
    """The chat-completions parameters for `chat` (tools, tool_choice, n, logprobs, …): only
    those the caller set, as OpenAI names them."""
    params: dict[str, Any] = {}
    if chat.tools is not None:
        params["tools"] = chat.tools
    if chat.tool_choice is not None:
        params["tool_choice"] = chat.tool_choice
    if chat.parallel_tool_calls is not None:
        params["parallel_tool_calls"] = chat.parallel_tool_calls
    if chat.n != 1:
        params["n"] = chat.n
    if chat.logprobs:
        params["logprobs"] = True
        if chat.top_logprobs is not None:
            params["top_logprobs"] = chat.top_logprobs
    if chat.reasoning_effort is not None:
        params["reasoning_effort"] = chat.reasoning_effort
    return params
