"""Reading the OpenAI chat wire: usage details, choices and tool calls as providers send them."""

import json

import pytest

from routing.errors import TransientError
from routing.providers.openai_style import completion_from_openai_json, usage_from_openai_dict
from routing.providers.openai_style.wire import json_read


def test_usage_reads_cached_and_reasoning_token_details():
    usage = usage_from_openai_dict(
        {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 32},
        }
    )

    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens, usage.reasoning_tokens) == (
        100,
        50,
        64,
        32,
    )


def body(*choices):
    return json.dumps(
        {"choices": list(choices), "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    ).encode()


def test_choices_come_back_in_index_order():
    completion = completion_from_openai_json(
        body(
            {"index": 1, "message": {"content": "b"}, "finish_reason": "stop"},
            {"index": 0, "message": {"content": "a"}, "finish_reason": "length"},
        )
    )

    assert (completion.text, completion.finish_reason) == ("a", "length")
    assert [(c.text, c.finish_reason) for c in completion.more_choices] == [("b", "stop")]


def test_a_server_that_says_stop_after_calling_a_tool_is_read_as_tool_calls():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}
    completion = completion_from_openai_json(
        body({"index": 0, "message": {"content": None, "tool_calls": [call]}, "finish_reason": "stop"})
    )

    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    ]


@pytest.mark.parametrize(
    "call",
    [
        {"id": "c1", "function": {"arguments": "{}"}},
        {"id": "c1", "function": {"name": "f", "arguments": "[1, 2]"}},
        "not a call",
    ],
    ids=["no-name", "arguments-not-an-object", "not-an-object"],
)
def test_a_tool_call_we_cannot_read_is_transient(call):
    with pytest.raises(TransientError):
        completion_from_openai_json(
            body(
                {
                    "index": 0,
                    "message": {"content": None, "tool_calls": [call]},
                    "finish_reason": "tool_calls",
                }
            )
        )


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1, "a": 2}',
        b'{"n": 123456789012345678901234567890, "m": -9223372036854775809}',
        b'{"x": NaN, "y": -Infinity, "z": 1e400}',
        b'{"s": "\\ud800 half a pair"}',
        '{"t": "Grüße 東京"}'.encode(),
    ],
    ids=["duplicate keys", "integers beyond 64 bits", "non-finite numbers", "a lone surrogate", "text"],
)
def test_the_reader_reads_what_json_reads(data):
    assert repr(json_read(data)) == repr(json.loads(data))


def test_the_reader_refuses_what_json_refuses():
    with pytest.raises(ValueError):
        json_read(b'{"a": ')
