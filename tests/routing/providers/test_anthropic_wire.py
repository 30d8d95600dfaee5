"""Canonical messages, tools and tool choice translate to Anthropic's Messages API and back."""

import base64

import pytest

from routing.errors import InvalidRequest
from routing.messages import messages_parse, tools_parse
from routing.providers.anthropic.wire import (
    finish_reason_from_anthropic,
    messages_to_anthropic,
    tool_calls_from_anthropic,
    tool_choice_to_anthropic,
    tools_to_anthropic,
)

PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def conversation() -> list[dict]:
    return messages_parse(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18 °C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "24 °C"},
            {"role": "developer", "content": "Answer in one line."},
        ]
    )


def test_tool_calls_become_tool_use_blocks_and_results_one_user_turn():
    system, turns = messages_to_anthropic(conversation())
    assert system == "Be brief.\n\nAnswer in one line."
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0]["content"] == "Weather in Paris and Rome?"
    assert turns[1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}},
    ]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "18 °C"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "24 °C"},
    ]


def test_images_become_base64_or_url_sources():
    messages = messages_parse(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg"}},
                ],
            }
        ]
    )
    _, turns = messages_to_anthropic(messages)
    assert turns[0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
    }
    assert turns[0]["content"][2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.org/cat.jpg"},
    }


def test_malformed_tool_arguments_in_the_history_are_a_request_error_naming_the_field():
    messages = conversation()
    messages[2]["tool_calls"][0]["function"]["arguments"] = "{not json"
    with pytest.raises(InvalidRequest) as info:
        messages_to_anthropic(messages)
    assert info.value.param == "messages[2].tool_calls[0].function.arguments"


def test_ids_outside_anthropics_pattern_are_mapped_the_same_way_on_both_sides():
    messages = conversation()
    messages[2]["tool_calls"][0]["id"] = "call.1:x"
    messages[3]["tool_call_id"] = "call.1:x"
    _, turns = messages_to_anthropic(messages)
    assert turns[1]["content"][1]["id"] == turns[2]["content"][0]["tool_use_id"] == "call_1_x"


def test_tools_and_tool_choice_map_to_anthropics_names():
    tools = tools_parse(
        [
            {
                "type": "function",
                "function": {"name": "weather", "description": "d", "parameters": {"type": "object"}},
            }
        ]
    )
    assert tools_to_anthropic(tools) == [
        {"name": "weather", "input_schema": {"type": "object"}, "description": "d"}
    ]
    assert tool_choice_to_anthropic("auto", parallel_tool_calls=None) == {"type": "auto"}
    assert tool_choice_to_anthropic("required", parallel_tool_calls=False) == {
        "type": "any",
        "disable_parallel_tool_use": True,
    }
    assert tool_choice_to_anthropic(
        {"type": "function", "function": {"name": "weather"}}, parallel_tool_calls=None
    ) == {
        "type": "tool",
        "name": "weather",
    }
    assert tool_choice_to_anthropic("none", parallel_tool_calls=None) == {"type": "none"}
    assert tool_choice_to_anthropic(None, parallel_tool_calls=None) is None


def test_tool_use_blocks_come_back_as_openai_tool_calls():
    text, calls = tool_calls_from_anthropic(
        [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
        ]
    )
    assert text == "Let me check."
    assert calls == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
        }
    ]
    assert finish_reason_from_anthropic("tool_use") == "tool_calls"
    assert finish_reason_from_anthropic("max_tokens") == "length"


def test_a_schema_without_a_type_is_declared_an_object():
    tools = tools_parse(
        [{"type": "function", "function": {"name": "f", "parameters": {"properties": {"a": {}}}}}]
    )

    assert tools_to_anthropic(tools)[0]["input_schema"] == {"type": "object", "properties": {"a": {}}}
