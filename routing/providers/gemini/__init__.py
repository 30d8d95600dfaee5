"""The `gemini` kind: Google's Gemini API (generateContent), read and written by `wire`.

The provider's `base_url` is the API root (default DEFAULT_BASE_URL) and its `api_version`
the version path (default `v1beta`, where function calling, thinking and logprobs are); a
base URL that already ends in a version is used as it is, and one left from the
OpenAI-compatible endpoint (`…/v1beta/openai/`) loses its `/openai`.

Honoured: messages with images (inline data, or fileData for an http(s) URL, which Gemini
fetches), `tools` / `tool_choice` (function declarations, functionCallingConfig),
`parallel_tool_calls: false` (the answer keeps its first call), `n` (candidateCount: native,
usage summed by the API), `logprobs` / `top_logprobs` (responseLogprobs), `reasoning_effort`
(a thinking budget), `temperature`, `max_tokens` (maxOutputTokens), `top_p`, `stop`, `seed`
and `response_format` (JSON mode; a schema as responseSchema). Not sent, as before:
`presence_penalty` and `frequency_penalty` (several Gemini models answer 400 to them) and
`user` (no counterpart). Embeddings: batchEmbedContents (`embed.py`; text only).
"""

from __future__ import annotations

import re

import openai

from routing.providers.base import ProviderSpec
from routing.providers.batching import batch_max_for
from routing.providers.gemini.client import GeminiAPIError, GeminiClient, request_body
from routing.providers.gemini.embed import GEMINI_EMBED_BATCH_MAX, embed_refusal
from routing.providers.openai_style import api_key_for, network_options, sdk_client_kwargs

__all__ = [
    "DEFAULT_BASE_URL",
    "NATIVE_N",
    "GeminiAPIError",
    "GeminiClient",
    "embed_refusal",
    "make_client",
    "request_body",
]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"
# n > 1 is answered by the API itself (candidateCount), in one call.
NATIVE_N = True

_VERSIONED = re.compile(r"/v\d+(alpha|beta)?\d*$")


def api_base(spec: ProviderSpec) -> str:
    """The URL the model paths (`/models/{id}:generateContent`) go under."""
    base = (spec.base_url or DEFAULT_BASE_URL).rstrip("/").removesuffix("/openai")
    if _VERSIONED.search(base):
        return base
    return f"{base}/{spec.api_version or DEFAULT_API_VERSION}"


def make_client(spec: ProviderSpec) -> GeminiClient:
    api_key = api_key_for(spec)
    options = network_options(spec)
    # The openai SDK's HTTP client classes (httpx2 or aiohttp), as every other kind uses.
    kwargs = sdk_client_kwargs(spec, options, sdk=openai)
    return GeminiClient(
        kwargs["http_client"],
        base_url=api_base(spec),
        api_key=api_key,
        headers=dict(options.default_headers or {}),
        timeout_cap=options.timeout_s,
        embed_batch_max=batch_max_for(options.embed_batch_max, GEMINI_EMBED_BATCH_MAX),
    )
