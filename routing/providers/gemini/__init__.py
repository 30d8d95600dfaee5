"""The `gemini` kind: Google's OpenAI-compatible Gemini endpoint through `openai.AsyncOpenAI`.

Of the sampling options it sends `top_p`, `stop` and `response_format`: the endpoint answers
400 "Unknown name" to fields it does not know, which `seed`, `presence_penalty`,
`frequency_penalty` and `user` have been (those are not sent: ignored, see docs/gateway.md)."""

from __future__ import annotations

import openai

from routing.providers.base import ProviderSpec
from routing.providers.openai_style import OpenAIStyleClient, api_key_for, network_options, sdk_client_kwargs

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"
SAMPLING_FIELDS = frozenset({"top_p", "stop", "response_format"})


def make_client(spec: ProviderSpec) -> OpenAIStyleClient:
    api_key = api_key_for(spec)
    options = network_options(spec)
    sdk_client = openai.AsyncOpenAI(
        api_key=api_key,
        base_url=spec.base_url or DEFAULT_BASE_URL,
        **sdk_client_kwargs(spec, options, sdk=openai),
    )
    return OpenAIStyleClient(sdk_client, options=options, sampling_fields=SAMPLING_FIELDS)
