"""The `openai_compatible` kind: any server speaking OpenAI chat completions (Ollama, vLLM,
llama.cpp, LM Studio…). `base_url` is required (e.g. http://localhost:11434/v1); the key
is optional: with no variable named a placeholder key is sent (a variable named but unset
is a missing key, as for every other kind).

No `NATIVE_N`: some such servers (Ollama) ignore `n` and answer once, so the engine asks
n times instead."""

from __future__ import annotations

import openai

from routing.errors import ModelPermanentError
from routing.providers.base import ProviderSpec
from routing.providers.openai_style import OpenAIStyleClient, api_key_for, network_options, sdk_client_kwargs

# Inputs per embeddings request: text-embeddings-inference's default client batch limit (Ollama
# and vLLM take more: raise it with the provider option `embed_batch_max`).
EMBED_BATCH_MAX = 32


def make_client(spec: ProviderSpec) -> OpenAIStyleClient:
    if not spec.base_url:
        raise ModelPermanentError(f"Provider {spec.name} needs the base URL of its server.")
    api_key = api_key_for(spec, optional=True)
    options = network_options(spec)
    sdk_client = openai.AsyncOpenAI(
        api_key=api_key,
        base_url=spec.base_url,
        **sdk_client_kwargs(spec, options, sdk=openai),
    )
    return OpenAIStyleClient(sdk_client, options=options, embed_batch_max=EMBED_BATCH_MAX)
