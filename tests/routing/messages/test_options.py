"""Chat options (tools, tool choice, n, logprobs, reasoning effort) are validated once, naming the field."""

import pytest

from routing.errors import InvalidRequest
from routing.messages import NO_CHAT_OPTIONS, chat_options

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def test_no_option_set_is_the_shared_empty_value():
    assert chat_options({"temperature": 0.2}) is NO_CHAT_OPTIONS
    assert not NO_CHAT_OPTIONS.wants_tools and NO_CHAT_OPTIONS.n == 1


def test_it_keeps_what_the_caller_set():
    options = chat_options(
        {
            "tools": [TOOL],
            "tool_choice": "required",
            "parallel_tool_calls": False,
            "n": 3,
            "logprobs": True,
            "top_logprobs": 2,
            "reasoning_effort": "low",
        }  # fmt: skip
    )
    assert options.wants_tools and options.tool_choice == "required" and options.parallel_tool_calls is False
    assert (options.n, options.logprobs, options.top_logprobs, options.reasoning_effort) == (
        3,
        True,
        2,
        "low",
    )
    assert not chat_options({"tools": [TOOL], "tool_choice": "none"}).wants_tools


@pytest.mark.parametrize(
    ("values", "param"),
    [
        ({"n": 0}, "n"),
        ({"n": 99}, "n"),
        ({"n": True}, "n"),
        ({"logprobs": "yes"}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"reasoning_effort": "max"}, "reasoning_effort"),
        ({"parallel_tool_calls": 1}, "parallel_tool_calls"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {"name": "x y"}}]}, "tools[0].function.name"),
    ],
)
def test_a_bad_value_names_its_field(values, param):
    with pytest.raises(InvalidRequest) as info:
        chat_options(values)
    assert info.value.param == param
