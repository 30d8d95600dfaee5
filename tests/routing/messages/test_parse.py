"""Messages, tools and tool_choice are parsed once into the canonical form, naming the field at fault."""

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.errors import InvalidRequest
from routing.messages import (
    IMAGE_MAX_BYTES,
    images_in,
    last_user_text,
    messages_have_images,
    messages_parse,
    record_view,
    tool_choice_parse,
    tools_parse,
)

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def agent_turns() -> list[dict]:
    return [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 °C, sunny"},
    ]


def rejected(raw, **kwargs) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        messages_parse(raw, **kwargs)
    return info.value


def test_it_keeps_an_agent_conversation_and_makes_developer_a_system_message():
    messages = messages_parse(agent_turns())
    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[2]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert messages[3] == {"role": "tool", "content": "18 °C, sunny", "tool_call_id": "call_1"}


def test_text_parts_become_one_string_and_image_parts_stay_parts():
    text_only = messages_parse(
        [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    )
    assert text_only[0]["content"] == "a\nb"
    with_image = messages_parse(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                ],
            }
        ]
    )
    assert with_image[0]["content"][1] == {"type": "image_url", "image_url": {"url": PNG}}
    assert messages_have_images(with_image) and not messages_have_images(text_only)
    assert last_user_text(with_image) == "What is this?"


def test_a_tool_message_must_answer_an_earlier_tool_call():
    turns = agent_turns()
    turns[3]["tool_call_id"] = "call_unknown"
    error = rejected(turns)
    assert error.param == "messages[3].tool_call_id" and "answers no tool call" in str(error)


def test_an_image_url_must_be_http_or_a_data_uri_of_an_image():
    for url, code in [("file:///etc/passwd", "invalid_image"), ("javascript:alert(1)", "invalid_image"),
                      ("data:text/html;base64,PGI+", "invalid_image"), ("data:image/png,raw", "invalid_image")]:  # fmt: skip
        error = rejected([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])
        assert error.param == "messages[0].content[0].image_url.url" and error.code == code


def test_a_data_uri_over_the_size_limit_is_refused_without_decoding_it():
    huge = "data:image/png;base64," + "A" * (IMAGE_MAX_BYTES * 4 // 3 + 8)
    error = rejected([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": huge}}]}])
    assert error.code == "image_too_large" and "MB" in str(error)


def test_unknown_part_types_and_roles_are_named():
    error = rejected([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}])
    assert error.param == "messages[0].content[0].type" and error.code == "unsupported_content"
    assert rejected([{"role": "function", "content": "x"}]).param == "messages[0].role"
    assert rejected(
        [{"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": PNG}}]}]
    ).param == ("messages[0].content[0].type")


def test_a_lone_surrogate_is_refused_at_parse_time_naming_the_field():
    raw = json.loads('[{"role": "user", "content": "x\\ud800y"}]')
    error = rejected(raw)
    assert error.param == "messages[0].content" and error.code == "invalid_encoding"
    tool_turns = agent_turns()
    tool_turns[2]["tool_calls"][0]["function"]["arguments"] = json.loads('"{\\"city\\": \\"\\udfff\\"}"')
    assert rejected(tool_turns).param == "messages[2].tool_calls[0].function.arguments"


def test_tools_and_tool_choice_are_validated_together():
    tools = tools_parse([WEATHER])
    assert tools == [WEATHER]
    assert tool_choice_parse({"type": "function", "function": {"name": "get_weather"}}, tools=tools)[
        "function"
    ] == {"name": "get_weather"}
    with pytest.raises(InvalidRequest) as info:
        tool_choice_parse({"type": "function", "function": {"name": "other"}}, tools=tools)
    assert info.value.param == "tool_choice.function.name"
    with pytest.raises(InvalidRequest):
        tool_choice_parse("required", tools=None)
    with pytest.raises(InvalidRequest) as info:
        tools_parse([{"type": "web_search"}])
    assert info.value.code == "unsupported_tool"
    with pytest.raises(InvalidRequest) as info:
        tools_parse([{"type": "function", "function": {"name": "has space"}}])
    assert info.value.param == "tools[0].function.name"


def test_the_record_view_shows_tool_calls_results_and_image_placeholders_never_bytes():
    messages = messages_parse(
        [
            *agent_turns(),
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "and this?"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                ],
            },
        ]
    )
    view = record_view(messages)
    assert 'get_weather({"city": "Paris"}) [call_1]' in view
    assert "tool (call_1): 18 °C, sunny" in view
    assert "[image: image/png, 1 KB]" in view and "base64" not in view
    assert images_in(messages)[0].media_type == "image/png"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "role",
                    "content",
                    "type",
                    "text",
                    "image_url",
                    "url",
                    "tool_calls",
                    "id",
                    "function",
                    "name",
                    "arguments",
                    "tool_call_id",
                ]
            ),
            inner,
            max_size=5,
        )
    ),  # fmt: skip
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_is_either_parsed_or_refused_with_invalid_request(raw):
    try:
        messages = messages_parse(raw)
    except InvalidRequest as exc:
        assert exc.param
    else:
        assert all(m["role"] in ("system", "user", "assistant", "tool") for m in messages)
