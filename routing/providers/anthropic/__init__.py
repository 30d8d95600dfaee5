"""The `anthropic` kind: the Messages API through `anthropic.AsyncAnthropic`.

Canonical (OpenAI-shaped) messages are translated by `wire`: system messages move to the
`system` parameter, tool calls become `tool_use` blocks and tool results `tool_result`
blocks in one user turn (ids kept, so a conversation started on an OpenAI model goes on
here), images become image blocks (base64 from a data URI, a url source for http(s)),
consecutive turns of one role merge. `max_tokens` (required by the API) defaults to
DEFAULT_MAX_TOKENS, and `temperature` is not sent (the anthropic 2.x SDK's Messages API has
no such parameter).

Chat options: `tools` → `{name, description, input_schema}`; `tool_choice` auto / required /
a named function / none → auto / any / tool / none, `parallel_tool_calls: false` →
`disable_parallel_tool_use`; `reasoning_effort` → extended thinking with a budget per effort
(REASONING_BUDGETS, added on top of `max_tokens`: the answer keeps its own allowance).
`chat_refusal` makes the engine pass the model over for `logprobs` (the API returns none)
and for `reasoning_effort` with tools (a tool loop with thinking needs the signed thinking
blocks passed back, which OpenAI-shaped messages do not carry). `n > 1`: the engine runs
parallel attempts (no native n).

Sampling options: `stop` → `stop_sequences`, `response_format` json_schema → `output_config:
{"format": {"type": "json_schema", "schema": …}}` (structured outputs), `user` →
`metadata.user_id`. `top_p` is not sent (the 2.x Messages API has none, like temperature);
`seed` and the penalties have no Anthropic counterpart: ignored. `response_format`
json_object (any JSON object, no schema) has no counterpart either — structured outputs need
a schema — so `sampling_refusal` makes the engine pass the model over (a chain moves on to a
model that can; a request naming only this model is a 400 naming the field).

Calls, plain and streamed, take the lean HTTP path by default (`client`: the request the SDK
would send, posted without the SDK's `post`; docs/providers.md, "The lean HTTP path"). Where
it does not apply, non-streamed calls go through the SDK client's documented low-level `post`
with the JSON read by us (see `routing.providers.openai_style`): the SDK's param transform and
model building cost more than the rest of the call against a nearby server; streams through
`messages.create(stream=True)`.
"""

from __future__ import annotations

import anthropic

from routing.providers.anthropic.client import AnthropicClient
from routing.providers.anthropic.params import (
    DEFAULT_MAX_TOKENS,
    REASONING_BUDGETS,
    request_params,
    sampling_params,
)
from routing.providers.anthropic.wire import completion_from_anthropic_json, usage_from_anthropic_dict
from routing.providers.base import ChatOptions, ProviderSpec, SamplingOptions
from routing.providers.openai_style import api_key_for, network_options, sdk_client_kwargs

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "REASONING_BUDGETS",
    "AnthropicClient",
    "chat_refusal",
    "completion_from_anthropic_json",
    "make_client",
    "request_params",
    "sampling_params",
    "sampling_refusal",
    "usage_from_anthropic_dict",
]


def sampling_refusal(options: SamplingOptions) -> tuple[str, str] | None:
    """(param, reason) for the options Anthropic's Messages API cannot honour, else None."""
    if options.format_type == "json_object":
        return (
            "response_format",
            "Anthropic models cannot honour response_format json_object (structured outputs "
            "need a schema: use json_schema)",
        )
    if options.format_type == "json_schema" and options.json_schema is None:
        return (
            "response_format.json_schema.schema",
            "Anthropic models need response_format.json_schema.schema for structured outputs",
        )
    return None


def chat_refusal(options: ChatOptions) -> tuple[str, str] | None:
    """(param, reason) for the chat options Anthropic cannot honour, else None."""
    if options.logprobs:
        return ("logprobs", "logprobs not supported by anthropic (the Messages API returns none)")
    if options.reasoning_effort is not None and options.tools:
        return (
            "reasoning_effort",
            "reasoning_effort with tools not supported by anthropic (extended thinking in a tool "
            "loop needs signed thinking blocks that OpenAI-shaped messages do not carry)",
        )
    return None


def make_client(spec: ProviderSpec) -> AnthropicClient:
    api_key = api_key_for(spec)
    options = network_options(spec)
    kwargs = sdk_client_kwargs(spec, options, sdk=anthropic)
    if spec.base_url:
        kwargs["base_url"] = spec.base_url
    sdk_client = anthropic.AsyncAnthropic(api_key=api_key, **kwargs)
    return AnthropicClient(sdk_client, timeout_cap=options.timeout_s, options=options)
