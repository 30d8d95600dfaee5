"""The client for every kind that speaks OpenAI chat completions through the `openai` SDK.

`routing/providers/{openai,azure_openai,openai_compatible}/` each build an SDK client
their way and wrap it in `OpenAIStyleClient`. SDK retries are off (the engine retries);
exceptions propagate raw and are mapped by the transport chokepoint.

Chat completions and embeddings take the lean HTTP path by default (`lean`: the request the
SDK would send, built once per path and model from the SDK client and posted on a plain aiohttp
session; the SDK's own exceptions for status errors; the Anthropic kind uses it too). Where it
does not apply (docs/providers.md), the SDK path below is used.

On the SDK path, non-streamed completions go through the SDK client's documented low-level request method
(`client.post(path, body=..., cast_to=httpx2.Response, options={"timeout": ...})`) and we
read the JSON ourselves: the same client, auth, headers, Azure deployment paths, status
errors and timeouts, without the SDK walking our plain-dict params through its TypedDict
transform and building a pydantic model of the answer (together ~0.4 ms of a ~1.4 ms call
against a local server; see docs/providers.md). Streams make the same request with
`stream=True` and read the SSE body themselves (`SSEDecoder`, `json.loads` per event) instead
of the SDK building a pydantic chunk model per event.

The package: `setup` (key, options, HTTP layer, TLS, sampling parameters), `client`
(`OpenAIStyleClient`), `lean` (the lean HTTP path, for any Stainless SDK client), `wire` (the
chat wire read without the SDK's models), `embed` (the embeddings wire).
"""

from routing.providers.openai_style.client import (
    MEMO_URLS,
    OpenAIStyleClient,
    idempotency_key_new,
    memoize_urls,
)
from routing.providers.openai_style.setup import (
    CHAT_PATH,
    DEFAULT_CLIENT_TIMEOUT_S,
    OPENAI_SAMPLING_FIELDS,
    PLACEHOLDER_KEY,
    api_key_for,
    chat_params,
    http_client_kind,
    network_options,
    parse_options,
    sampling_params,
    sdk_client_kwargs,
    shared_ssl_context,
)
from routing.providers.openai_style.wire import (
    DRAIN_S,
    SSEDecoder,
    completion_from_openai_json,
    stream_chunk_from_openai_json,
    tool_arguments_check,
    tool_call_deltas_from_openai,
    tool_calls_from_openai,
    usage_from_openai_dict,
)

__all__ = [
    "CHAT_PATH",
    "DEFAULT_CLIENT_TIMEOUT_S",
    "DRAIN_S",
    "MEMO_URLS",
    "OPENAI_SAMPLING_FIELDS",
    "OpenAIStyleClient",
    "PLACEHOLDER_KEY",
    "SSEDecoder",
    "api_key_for",
    "chat_params",
    "completion_from_openai_json",
    "http_client_kind",
    "idempotency_key_new",
    "memoize_urls",
    "network_options",
    "parse_options",
    "sampling_params",
    "sdk_client_kwargs",
    "shared_ssl_context",
    "stream_chunk_from_openai_json",
    "tool_arguments_check",
    "tool_call_deltas_from_openai",
    "tool_calls_from_openai",
    "usage_from_openai_dict",
]
