"""The `openai` kind: api.openai.com (or `base_url`, e.g. a proxy) through `openai.AsyncOpenAI`."""

from __future__ import annotations

import openai

from routing.providers.base import ProviderSpec
from routing.providers.openai_style import OpenAIStyleClient, api_key_for, network_options, sdk_client_kwargs

DEFAULT_BASE_URL = "https://api.openai.com/v1"

# OpenAI answers `n > 1` itself (choices 1… come back in the same response).
NATIVE_N = True


def make_client(spec: ProviderSpec) -> OpenAIStyleClient:
    api_key = api_key_for(spec)
    options = network_options(spec)
    sdk_client = openai.AsyncOpenAI(
        api_key=api_key,
        base_url=spec.base_url or DEFAULT_BASE_URL,
        **sdk_client_kwargs(spec, options, sdk=openai),
    )
    # Newer OpenAI models reject `max_tokens`; `max_completion_tokens` works for all of them.
    return OpenAIStyleClient(sdk_client, options=options, max_tokens_param="max_completion_tokens")
