"""The Gemini kind on Gemini's own wire (generateContent), against the fake provider: function
declarations and calls, tool results, images, streaming, n, logprobs, usage, errors."""

from __future__ import annotations

import base64

import pytest

from routing.errors import InvalidRequest, ModelPermanentError, RequestInvalidError, TransientError
from routing.messages import chat_options, messages_parse
from routing.providers import gemini
from routing.providers.base import ProviderSpec, StreamEnd, ToolCallDelta, Usage
from routing.providers.gemini.tools import schema_to_gemini
from routing.providers.registry import client_for
from routing.sampling import sampling_options
from tests.fake_provider import FAKE_KEY, Reply
from tests.routing.providers.conftest import complete, complete_error, request, run, stream, stream_error

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city.",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": ["string", "null"], "enum": ["C", "F"]},
            },
            "required": ["city", "gone"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TIME = {"type": "function", "function": {"name": "time", "parameters": {"type": "object", "properties": {}}}}
ASK = [{"role": "user", "content": "Weather in Paris and Rome?"}]
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def tools_request(messages=ASK, **options):
    return request(
        "gem", messages=messages_parse(messages), chat=chat_options({"tools": [WEATHER, TIME], **options})
    )


def client_items(spec, req) -> list:
    """What the client's own stream yields (text, tool-call pieces, the end), in order."""

    async def go() -> list:
        return [item async for item in client_for(spec).stream(req)]

    return run(go())


def an_agent_turn(first_id: str = "call_P4r1s", second_id: str = "call_R0me") -> list[dict]:
    return [
        {"role": "system", "content": "Be brief."},
        *ASK,
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": first_id,
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                },
                {"id": second_id, "type": "function", "function": {"name": "time", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": first_id, "content": '{"celsius": 18}'},
        {"role": "tool", "tool_call_id": second_id, "content": "noon"},
    ]


def test_it_calls_generate_content_with_the_key_in_a_header_and_the_system_instruction(fake_provider):
    complete(fake_provider.spec("gemini"), request("gemini-x", max_tokens=77, temperature=0.2))

    received = fake_provider.history[0]
    assert received.wire == "gemini"
    assert received.path == "/v1beta/models/gemini-x:generateContent"
    assert received.headers["x-goog-api-key"] == FAKE_KEY
    assert FAKE_KEY not in str(received.query)
    assert received.body["systemInstruction"] == {"parts": [{"text": "Answer briefly."}]}
    assert received.body["contents"] == [
        {"role": "user", "parts": [{"text": "What is the capital of France?"}]}
    ]
    assert received.body["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 77}


def test_sampling_options_go_in_the_generation_config_and_a_schema_in_geminis_subset(fake_provider):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}
    sampling = sampling_options(
        {
            "top_p": 0.5,
            "stop": ["END"],
            "seed": 7,
            "presence_penalty": 0.5,
            "user": "u-1",
            "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        }
    )

    complete(fake_provider.spec("gemini"), request("gem", sampling=sampling))

    assert fake_provider.history[0].body["generationConfig"] == {
        "topP": 0.5,
        "stopSequences": ["END"],
        "seed": 7,
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}},
    }


def test_tools_become_function_declarations_with_the_schema_gemini_takes(fake_provider):
    complete(fake_provider.spec("gemini"), tools_request())

    body = fake_provider.history[0].body
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "weather",
                    "description": "The weather in a city.",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {
                            "city": {"type": "STRING"},
                            "unit": {"type": "STRING", "nullable": True, "enum": ["C", "F"]},
                        },
                        "required": ["city"],
                    },
                },
                {"name": "time"},  # no parameters: Gemini refuses an OBJECT without properties
            ]
        }
    ]
    assert "toolConfig" not in body


def test_refs_are_inlined_and_unknown_keywords_dropped():
    schema = {
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number", "format": "double"}}}},
        "type": "object",
        "properties": {
            "where": {"$ref": "#/$defs/Point", "description": "A point."},
            "kind": {"const": 3},
            "tags": {"type": "array", "items": {"type": "string", "format": "uri"}, "examples": [["a"]]},
            "choice": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
    }

    assert schema_to_gemini(schema) == {
        "type": "OBJECT",
        "properties": {
            "where": {
                "description": "A point.",
                "type": "OBJECT",
                "properties": {"x": {"type": "NUMBER", "format": "double"}},
            },
            "kind": {"enum": ["3"], "type": "STRING"},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
            "choice": {"type": "INTEGER", "nullable": True},
        },
    }


def test_a_recursive_ref_stops_instead_of_looping():
    schema = {
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        "$ref": "#/$defs/Node",
    }

    converted = schema_to_gemini(schema)

    assert converted["type"] == "OBJECT"
    assert "next" in converted["properties"]


@pytest.mark.parametrize(
    ("options", "sent"),
    [
        ({"tool_choice": "auto"}, {"mode": "AUTO"}),
        ({"tool_choice": "required"}, {"mode": "ANY"}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "time"}}},
            {"mode": "ANY", "allowedFunctionNames": ["time"]},
        ),
        ({"tool_choice": "none"}, {"mode": "NONE"}),
    ],
    ids=["auto", "required", "named", "none"],
)
def test_each_tool_choice_is_a_function_calling_mode(fake_provider, options, sent):
    complete(fake_provider.spec("gemini"), tools_request(**options))

    assert fake_provider.history[0].body["toolConfig"] == {"functionCallingConfig": sent}


def test_function_calls_come_back_as_tool_calls_with_ids_of_their_own(fake_provider):
    calls = (
        {"id": "-", "name": "weather", "arguments": {"city": "Paris"}},
        {"id": "-", "name": "weather", "arguments": {"city": "Rome"}},
    )
    fake_provider.script("gem", Reply.tool_calls_of(*calls), Reply.tool_calls_of(*calls))
    spec = fake_provider.spec("gemini")

    first = complete(spec, tools_request())
    second = complete(spec, tools_request())

    assert first.finish_reason == "tool_calls"
    assert [c["function"] for c in first.tool_calls] == [
        {"name": "weather", "arguments": '{"city": "Paris"}'},
        {"name": "weather", "arguments": '{"city": "Rome"}'},
    ]
    ids = [c["id"] for c in first.tool_calls + second.tool_calls]
    assert all(i.startswith("call_") for i in ids)
    assert len(set(ids)) == 4  # unique within an answer and across answers


def test_parallel_tool_calls_false_keeps_the_first_call(fake_provider):
    fake_provider.script(
        "gem",
        Reply.tool_calls_of(
            {"id": "-", "name": "weather", "arguments": {"city": "Paris"}},
            {"id": "-", "name": "time", "arguments": {}},
        ),
    )

    completion = complete(fake_provider.spec("gemini"), tools_request(parallel_tool_calls=False))

    assert [c["function"]["name"] for c in completion.tool_calls] == ["weather"]


def test_tool_results_are_function_responses_in_one_user_turn_named_by_their_call(fake_provider):
    complete(fake_provider.spec("gemini"), tools_request(an_agent_turn()))

    contents = fake_provider.history[0].body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [
        {"text": "Checking."},
        {
            "functionCall": {"name": "weather", "args": {"city": "Paris"}},
            "thoughtSignature": "skip_thought_signature_validator",
        },
        {"functionCall": {"name": "time", "args": {}}},
    ]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "weather", "response": {"celsius": 18}}},
        {"functionResponse": {"name": "time", "response": {"result": "noon"}}},  # not an object: wrapped
    ]


def test_a_conversation_gemini_started_goes_on_with_the_ids_it_was_given(fake_provider):
    fake_provider.script("gem", Reply.tool_call("weather", {"city": "Oslo"}))
    spec = fake_provider.spec("gemini")
    call = complete(spec, tools_request()).tool_calls[0]
    history = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "[3, 4]"},
    ]

    complete(spec, tools_request(history))

    last = fake_provider.history[1].body["contents"][-1]
    assert last == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "weather", "response": {"result": [3, 4]}}}],
    }


def test_images_are_inline_data_or_file_data(fake_provider):
    messages = messages_parse(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg?size=2"}},
                ],
            }
        ]
    )

    complete(fake_provider.spec("gemini"), request("gem", messages=messages))

    assert fake_provider.history[0].images() == [
        {"source": "base64", "media_type": "image/png", "data": PNG_B64},
        {"source": "url", "url": "https://example.org/cat.jpg?size=2", "media_type": "image/jpeg"},
    ]


def test_an_image_url_whose_name_tells_no_type_is_sent_without_one(fake_provider):
    messages = messages_parse(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "?"},
                    {"type": "image_url", "image_url": {"url": "https://cdn.example.org/i/8f3a"}},
                ],
            }
        ]
    )

    complete(fake_provider.spec("gemini"), request("gem", messages=messages))

    assert fake_provider.history[0].body["contents"][0]["parts"][1] == {
        "fileData": {"fileUri": "https://cdn.example.org/i/8f3a"}
    }


def test_an_unknown_part_type_is_refused_naming_the_part(fake_provider):
    messages = [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]

    with pytest.raises(InvalidRequest) as caught:
        complete(fake_provider.spec("gemini"), request("gem", messages=messages))

    assert caught.value.param == "messages[0].content[0].type"


def test_streamed_text_and_function_calls_arrive_in_order_then_the_assembled_calls(fake_provider):
    fake_provider.script(
        "gem",
        Reply.tool_calls_of(
            {"id": "-", "name": "weather", "arguments": {"city": "Paris"}},
            {"id": "-", "name": "time", "arguments": {}},
            text="Let me look.",
        ),
    )

    items = client_items(fake_provider.spec("gemini"), tools_request())

    assert fake_provider.history[0].path.endswith(":streamGenerateContent")
    assert fake_provider.history[0].query == {"alt": "sse"}
    assert "".join(i for i in items if isinstance(i, str)) == "Let me look."
    pieces = [i for i in items if isinstance(i, ToolCallDelta)]
    assert [(p.index, p.name, p.arguments) for p in pieces] == [
        (0, "weather", '{"city": "Paris"}'),
        (1, "time", "{}"),
    ]
    end = items[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "tool_calls"
    assert [c["id"] for c in end.tool_calls] == [p.id for p in pieces]


def test_the_transport_stream_ends_with_usage_and_the_calls(fake_provider):
    fake_provider.script(
        "gem",
        Reply.tool_call("weather", {"city": "Oslo"}, input_tokens=9, output_tokens=4, reasoning_tokens=30),
    )

    end = stream(fake_provider.spec("gemini"), tools_request())[-1]

    assert isinstance(end, StreamEnd)
    assert end.tool_calls[0]["function"]["arguments"] == '{"city": "Oslo"}'
    assert end.usage == Usage(input_tokens=9, output_tokens=34, reasoning_tokens=30)


def test_usage_counts_thoughts_as_reasoning_output_and_cached_content(fake_provider):
    fake_provider.script(
        "gem", Reply.ok("ok", input_tokens=100, output_tokens=3, cached_tokens=60, reasoning_tokens=20)
    )

    usage = complete(fake_provider.spec("gemini"), request("gem")).usage

    assert usage == Usage(input_tokens=100, output_tokens=23, cached_tokens=60, reasoning_tokens=20)


def test_n_asks_for_candidates_and_the_others_come_back_as_more_choices(fake_provider):
    fake_provider.script("gem", Reply.ok("same answer", output_tokens=2))

    completion = complete(fake_provider.spec("gemini"), request("gem", chat=chat_options({"n": 3})))

    assert fake_provider.history[0].body["generationConfig"] == {"candidateCount": 3}
    assert completion.text == "same answer"
    assert [c.text for c in completion.more_choices] == ["same answer", "same answer"]
    assert completion.usage.output_tokens == 6  # the API sums every candidate
    assert gemini.NATIVE_N is True


def test_logprobs_come_back_in_openais_shape(fake_provider):
    fake_provider.script("gem", Reply.ok("one two"))

    completion = complete(
        fake_provider.spec("gemini"), request("gem", chat=chat_options({"logprobs": True, "top_logprobs": 2}))
    )

    assert fake_provider.history[0].body["generationConfig"] == {"responseLogprobs": True, "logprobs": 2}
    content = completion.logprobs["content"]  # type: ignore[index]
    assert [t["token"] for t in content] == ["one", " two"]
    assert [a["token"] for a in content[0]["top_logprobs"]] == ["one", "one1"]
    assert content[1]["logprob"] < 0


def test_reasoning_effort_is_a_thinking_budget(fake_provider):
    complete(fake_provider.spec("gemini"), request("gem", chat=chat_options({"reasoning_effort": "low"})))

    assert fake_provider.history[0].body["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 1024}}


@pytest.mark.parametrize(("finish", "expected"), [("stop", "stop"), ("length", "length")])
def test_finish_reasons_read_as_openais(fake_provider, finish, expected):
    fake_provider.script("gem", Reply.ok("x", finish_reason=finish))

    assert complete(fake_provider.spec("gemini"), request("gem")).finish_reason == expected


def test_a_safety_stop_is_model_permanent(fake_provider):
    fake_provider.script("gem", Reply.ok("x", finish_reason="content_filter"))

    assert isinstance(complete_error(fake_provider.spec("gemini"), request("gem")), ModelPermanentError)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_malformed_function_call_is_a_transient_provider_error(fake_provider, streamed):
    fake_provider.script("gem", Reply.ok("", finish_reason="MALFORMED_FUNCTION_CALL"))
    spec, req = fake_provider.spec("gemini"), tools_request()

    error = stream_error(spec, req)[1] if streamed else complete_error(spec, req)

    assert isinstance(error, TransientError)
    assert "MALFORMED_FUNCTION_CALL" in error.message


def test_function_call_arguments_that_are_not_an_object_are_a_transient_provider_error(fake_provider):
    fake_provider.script("gem", Reply.tool_call("weather", "{not json"))

    error = complete_error(fake_provider.spec("gemini"), tools_request())

    assert isinstance(error, TransientError) and "malformed function call" in error.message


def test_a_key_google_rejects_is_model_permanent_not_a_bad_request(fake_provider):
    # Google answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
    fake_provider.script(
        "gem", Reply(kind="error", status=400, error_code="invalid_api_key", message="API key not valid.")
    )

    error = complete_error(fake_provider.spec("gemini"), request("gem"))

    assert isinstance(error, ModelPermanentError)
    assert error.http_status == 401 and "API key not valid" in error.message


def test_a_bad_request_is_request_invalid(fake_provider):
    fake_provider.script("gem", Reply.bad_request("Invalid JSON payload."))

    error = complete_error(fake_provider.spec("gemini"), request("gem"))

    assert isinstance(error, RequestInvalidError) and "Invalid JSON payload" in error.message


def test_a_mid_stream_error_is_transient_and_keeps_the_partial_text(fake_provider):
    fake_provider.script("gem", Reply.stream_error(after_tokens=2, text="one two three four"))

    items, error = stream_error(fake_provider.spec("gemini"), request("gem"))

    assert isinstance(error, TransientError) and "Overloaded" in error.message
    assert error.partial_text == "one two"


@pytest.mark.parametrize(
    ("base_url", "api_version", "expected"),
    [
        ("", "", "https://generativelanguage.googleapis.com/v1beta"),
        (
            "https://generativelanguage.googleapis.com/v1beta/openai/",
            "",
            "https://generativelanguage.googleapis.com/v1beta",
        ),
        ("https://proxy.example/gemini", "v1", "https://proxy.example/gemini/v1"),
        ("https://proxy.example/v1alpha", "", "https://proxy.example/v1alpha"),
    ],
)
def test_the_api_base_comes_from_the_base_url_and_version(base_url, api_version, expected):
    spec = ProviderSpec(name="g", kind="gemini", base_url=base_url, api_version=api_version)

    assert gemini.api_base(spec) == expected


def test_tool_turns_without_tools_offered_declare_the_functions_they_called_and_allow_none(fake_provider):
    complete(fake_provider.spec("gemini"), request("gem", messages=messages_parse(an_agent_turn())))

    body = fake_provider.history[0].body
    assert body["tools"] == [{"functionDeclarations": [{"name": "weather"}, {"name": "time"}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}


def test_only_system_messages_are_refused_before_sending(fake_provider):
    error = complete_error(
        fake_provider.spec("gemini"), request("gem", messages=[{"role": "system", "content": "Hi"}])
    )

    assert isinstance(error, RequestInvalidError) and error.local
    assert fake_provider.history == []
