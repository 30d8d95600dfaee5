"""An agent's conversation moves between provider kinds: tool calls made on one kind are
answered and continued on another, their ids kept; images and streamed tool calls reach the
Anthropic and Gemini wires through the engine."""

import base64

from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "What is the weather in Oslo?"}]
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def agent_chain(fake_provider):
    gpt = fake_provider.model("gpt", capabilities=["tool_use"])
    claude = fake_provider.model("claude", kind="anthropic", capabilities=["tool_use"])
    return FallbackChainFactory(name="agents", models=[gpt, claude])


def assistant_turn(result) -> dict:
    return {"role": "assistant", "content": result.text or None, "tool_calls": result.tool_calls}


def test_an_agent_loop_falls_over_from_an_openai_model_to_anthropic_between_turns_ids_kept(fake_provider):
    agent_chain(fake_provider)
    fake_provider.script(
        "gpt", Reply.tool_call("weather", {"city": "Oslo"}, id="call_Xy7"), Reply.unauthorized()
    )
    fake_provider.script("claude", Reply.ok("It is 4 °C in Oslo."))

    first = orchestrator.execute_with_fallback(ASK, chain="agents", tools=[WEATHER])
    conversation = [
        *ASK,
        assistant_turn(first),
        {"role": "tool", "tool_call_id": "call_Xy7", "content": "4 °C"},
    ]
    second = orchestrator.execute_with_fallback(conversation, chain="agents", tools=[WEATHER])

    assert (first.model, first.finish_reason, first.tool_calls[0]["id"]) == ("gpt", "tool_calls", "call_Xy7")
    assert (second.model, second.text) == ("claude", "It is 4 °C in Oslo.")
    (received,) = fake_provider.requests_for("claude")
    turns = received.body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": "call_Xy7", "name": "weather", "input": {"city": "Oslo"}}
    ]
    assert turns[2]["content"] == [{"type": "tool_result", "tool_use_id": "call_Xy7", "content": "4 °C"}]
    assert received.body["tools"][0]["name"] == "weather"


def test_calls_anthropic_made_continue_on_gemini_named_by_their_id(fake_provider):
    fake_provider.model("claude", kind="anthropic", capabilities=["tool_use"])
    fake_provider.model("gem", kind="gemini", capabilities=["tool_use"])
    fake_provider.script("claude", Reply.tool_call("weather", {"city": "Oslo"}, id="toolu_01A"))
    fake_provider.script("gem", Reply.ok("4 °C, cloudy."))

    first = orchestrator.complete(ASK, model="claude", tools=[WEATHER])
    conversation = [
        *ASK,
        assistant_turn(first),
        {"role": "tool", "tool_call_id": "toolu_01A", "content": '{"c": 4}'},
    ]
    second = orchestrator.complete(conversation, model="gem", tools=[WEATHER])

    assert first.tool_calls[0]["id"] == "toolu_01A"
    assert second.text == "4 °C, cloudy."
    contents = fake_provider.requests_for("gem")[0].body["contents"]
    assert contents[1]["parts"][0]["functionCall"] == {"name": "weather", "args": {"city": "Oslo"}}
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "weather", "response": {"c": 4}}}],
    }


def test_streamed_tool_calls_from_anthropic_and_gemini_become_tool_call_events(fake_provider):
    fake_provider.model("claude", kind="anthropic", capabilities=["tool_use"])
    fake_provider.model("gem", kind="gemini", capabilities=["tool_use"])
    fake_provider.script(
        "claude", Reply.tool_call("weather", {"city": "Oslo"}, id="toolu_9", text="One moment.")
    )
    fake_provider.script("gem", Reply.tool_call("weather", {"city": "Oslo"}, text="One moment."))

    async def events(model):
        return [e async for e in orchestrator.astream(ASK, model=model, tools=[WEATHER])]

    for model in ("claude", "gem"):
        stream = async_to_sync(events)(model)
        pieces = [e.tool_call for e in stream if e.kind == "tool_call"]
        result = stream[-1].result
        assert "".join(p.arguments for p in pieces) == '{"city": "Oslo"}', model
        assert pieces[0].name == "weather" and pieces[0].id == result.tool_calls[0]["id"]
        assert (result.text, result.finish_reason) == ("One moment.", "tool_calls")
    assert CallRecord.objects.count() == 2


def test_an_image_reaches_a_vision_anthropic_model_as_an_image_block(fake_provider):
    fake_provider.model("claude", kind="anthropic", capabilities=["vision"])
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
            ],
        }
    ]

    result = orchestrator.complete(messages, model="claude")

    (received,) = fake_provider.requests_for("claude")
    assert received.images() == [{"source": "base64", "media_type": "image/png", "data": PNG_B64}]
    assert result.text
    record = CallRecord.objects.get()
    assert PNG_B64 not in record.request_text  # recorded as a placeholder, never the bytes


def test_a_tool_call_record_from_anthropic_keeps_the_calls(fake_provider):
    fake_provider.model("claude", kind="anthropic", capabilities=["tool_use"])
    fake_provider.script("claude", Reply.tool_call("weather", {"city": "Oslo"}, id="toolu_5"))

    orchestrator.complete(ASK, model="claude", tools=[WEATHER])

    record = CallRecord.objects.get()
    assert "toolu_5" in record.response_text
    assert (
        fake_provider.requests_for("claude")[0].body["tools"][0]["input_schema"]
        == WEATHER["function"]["parameters"]
    )


def test_malformed_tool_json_from_anthropic_is_a_recorded_provider_error_and_the_chain_moves_on(
    fake_provider, settings
):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0}
    claude = fake_provider.model("claude", kind="anthropic", capabilities=["tool_use"])
    gpt = fake_provider.model("gpt", capabilities=["tool_use"])
    FallbackChainFactory(name="agents", models=[claude, gpt])
    fake_provider.script("claude", Reply.tool_call("weather", "{not json", id="toolu_1"))
    fake_provider.script("gpt", Reply.tool_call("weather", {"city": "Oslo"}, id="call_1"))

    result = orchestrator.execute_with_fallback(ASK, chain="agents", tools=[WEATHER])

    assert (result.model, result.tool_calls[0]["id"]) == ("gpt", "call_1")
    failed = CallRecord.objects.get(model_name="claude")
    assert failed.status == "error" and "malformed tool call" in failed.error_message


def test_a_stream_whose_tool_json_turns_out_malformed_ends_in_a_recorded_error(fake_provider):
    fake_provider.model("claude", kind="anthropic", capabilities=["tool_use"])
    fake_provider.script("claude", Reply.tool_call("weather", '{"city": "Os', id="toolu_1"))

    async def events():
        return [e async for e in orchestrator.astream(ASK, model="claude", tools=[WEATHER])]

    stream = async_to_sync(events)()

    # The pieces were already sent: no fallover, an error event (as for a cut stream).
    assert [e.kind for e in stream][-1] == "error"
    assert "tool_call" in [e.kind for e in stream]
    record = CallRecord.objects.get()
    assert record.status == "error" and "not a JSON object" in record.error_message
