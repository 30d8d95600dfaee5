"""The `azure_openai` kind: an Azure OpenAI resource through `openai.AsyncAzureOpenAI`.

`base_url` is the resource endpoint (https://<name>.openai.azure.com), `api_version` is
required, and a model's `model_id` is the deployment name (the SDK puts it in the path:
/openai/deployments/<deployment>/chat/completions?api-version=...)."""

from __future__ import annotations

import openai

from routing.errors import ModelPermanentError
from routing.providers.base import ProviderSpec
from routing.providers.openai_style import OpenAIStyleClient, api_key_for, network_options, sdk_client_kwargs

# Azure OpenAI answers `n > 1` itself, as OpenAI does.
NATIVE_N = True


def make_client(spec: ProviderSpec) -> OpenAIStyleClient:
    api_key = api_key_for(spec)
    if not spec.base_url or not spec.api_version:
        raise ModelPermanentError(f"Provider {spec.name} needs its Azure endpoint URL and API version.")
    options = network_options(spec)
    sdk_client = openai.AsyncAzureOpenAI(
        api_key=api_key,
        azure_endpoint=spec.base_url,
        api_version=spec.api_version,
        **sdk_client_kwargs(spec, options, sdk=openai),
    )
    return OpenAIStyleClient(sdk_client, options=options, max_tokens_param="max_completion_tokens")
