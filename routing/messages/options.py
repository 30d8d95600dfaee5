"""The chat options beyond sampling: tools, tool choice, n and logprobs, in one typed place.

`ChatOptions` travels like `SamplingOptions`: from the caller (the gateway's request body,
the Python API's keyword arguments) on the engine's Trace to every attempt's
`ProviderRequest`, fallbacks included. Each provider kind sends what it can honour; what it
cannot is never dropped silently (the engine passes the model over with a recorded reason).

`chat_options(values)` validates a mapping with OpenAI's names and raises `InvalidRequest`
naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from routing.errors import InvalidRequest
from routing.messages.parse import ToolChoice, Tools, tool_choice_parse, tools_parse

CHAT_OPTION_FIELDS = frozenset(
    {"tools", "tool_choice", "parallel_tool_calls", "n", "logprobs", "top_logprobs", "reasoning_effort"}
)
MAX_N = 8
REASONING_EFFORTS = ("minimal", "low", "medium", "high")


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """What the caller set (None: not set; nothing unset is sent upstream)."""

    tools: Tools | None = field(default=None, hash=False)
    tool_choice: ToolChoice = field(default=None, hash=False)
    parallel_tool_calls: bool | None = None
    n: int = 1
    logprobs: bool = False
    top_logprobs: int | None = None
    reasoning_effort: str | None = None

    @property
    def wants_tools(self) -> bool:
        """Tools are offered and the model may call them (tool_choice is not "none")."""
        return bool(self.tools) and self.tool_choice != "none"


NO_CHAT_OPTIONS = ChatOptions()


def _bool(values: Mapping[str, Any], name: str) -> bool | None:
    value = values.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise InvalidRequest(f"{name} must be a boolean.", param=name, code="invalid_type")


def _int(values: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = values.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer.", param=name, code="invalid_type")
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}.", param=name, code="invalid_value")
    return value


def chat_options(values: Mapping[str, Any]) -> ChatOptions:
    """ChatOptions from OpenAI-named values; NO_CHAT_OPTIONS when none of them is set."""
    if not any(values.get(name) is not None for name in CHAT_OPTION_FIELDS):
        return NO_CHAT_OPTIONS
    tools = tools_parse(values.get("tools"))
    effort = values.get("reasoning_effort")
    if effort is not None and effort not in REASONING_EFFORTS:
        raise InvalidRequest(
            f"reasoning_effort must be one of {', '.join(REASONING_EFFORTS)}.",
            param="reasoning_effort",
            code="invalid_value",
        )
    logprobs = _bool(values, "logprobs") or False
    top = _int(values, "top_logprobs", 0, 20)
    if top is not None and not logprobs:
        raise InvalidRequest("top_logprobs needs logprobs: true.", param="top_logprobs", code="invalid_value")
    return ChatOptions(
        tools=tools,
        tool_choice=tool_choice_parse(values.get("tool_choice"), tools=tools),
        parallel_tool_calls=_bool(values, "parallel_tool_calls"),
        n=_int(values, "n", 1, MAX_N) or 1,
        logprobs=logprobs,
        top_logprobs=top,
        reasoning_effort=effort,
    )
