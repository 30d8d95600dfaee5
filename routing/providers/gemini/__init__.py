"""The `gemini` kind: Google's OpenAI-compatible Gemini endpoint through `openai.AsyncOpenAI`."""

from __future__ import annotations

import openai

from routing.providers.base import ProviderSpec
from routing.providers.openai_style import OpenAIStyleClient, api_key_for, network_options, sdk_client_kwargs

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"


def make_client(spec: ProviderSpec) -> OpenAIStyleClient:
    api_key = api_key_for(spec)
    options = network_options(spec)
    sdk_client = openai.AsyncOpenAI(
        api_key=api_key,
        base_url=spec.base_url or DEFAULT_BASE_URL,
        **sdk_client_kwargs(spec, options, sdk=openai),
    )
    return OpenAIStyleClient(sdk_client, options=options)
