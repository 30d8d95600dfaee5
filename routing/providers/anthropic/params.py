"""The Messages API request body for a ProviderRequest (see the package's docstring)."""

from __future__ import annotations

from typing import Any

from routing.errors import RequestInvalidError
from routing.providers.anthropic.wire import (
    messages_to_anthropic,
    tool_choice_to_anthropic,
    tools_of_history,
    tools_to_anthropic,
)
from routing.providers.base import NO_SAMPLING, ProviderRequest, SamplingOptions

DEFAULT_MAX_TOKENS = 1024
# reasoning_effort → extended thinking's budget_tokens (the API's minimum is 1024).
REASONING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}


def sampling_params(options: SamplingOptions) -> dict[str, Any]:
    """The Messages API parameters for what Anthropic can honour of `options` (only those set)."""
    params: dict[str, Any] = {}
    if options.stop:
        params["stop_sequences"] = list(options.stop)
    schema = options.json_schema
    if schema is not None:
        params["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if options.user:
        params["metadata"] = {"user_id": options.user}
    return params


def request_params(request: ProviderRequest) -> dict[str, Any]:
    """The Messages API body for `request` (without `stream`)."""
    system, messages = messages_to_anthropic(request.messages)
    if not messages:
        raise RequestInvalidError("Anthropic models need at least one user message.", local=True)
    max_tokens = request.max_tokens or DEFAULT_MAX_TOKENS
    params: dict[str, Any] = {"model": request.model_id, "messages": messages}
    if system:
        params["system"] = system
    chat = request.chat
    if chat.tools:
        params["tools"] = tools_to_anthropic(chat.tools)
        choice = tool_choice_to_anthropic(chat.tool_choice, parallel_tool_calls=chat.parallel_tool_calls)
        if choice is not None:
            params["tool_choice"] = choice
    elif any(message.get("tool_calls") for message in request.messages):
        params["tools"] = tools_of_history(request.messages)
        params["tool_choice"] = {"type": "none"}
    if chat.reasoning_effort is not None:
        budget = REASONING_BUDGETS[chat.reasoning_effort]
        params["thinking"] = {"type": "enabled", "budget_tokens": budget}
        max_tokens += budget
    params["max_tokens"] = max_tokens
    if request.sampling is not NO_SAMPLING:
        params.update(sampling_params(request.sampling))
    return params
