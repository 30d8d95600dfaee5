"""Streamed tool calls on the OpenAI wire: each piece arrives as a `tool_call` event in the
order the provider sent it, the `done` Result carries the calls assembled, and a stream that
fails after a tool-call piece has started (no fallover)."""

import json

from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply

MESSAGES = [{"role": "user", "content": "Weather in Oslo and Rome?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def events_of(**kwargs):
    async def run():
        return [e async for e in orchestrator.astream(MESSAGES, **kwargs)]

    return async_to_sync(run)()


def test_streamed_tool_call_pieces_become_events_and_the_result_assembles_them(fake_provider):
    fake_provider.model("gpt", capabilities=["tool_use"])
    fake_provider.script(
        "gpt",
        Reply.tool_calls_of(
            {"id": "call_a", "name": "weather", "arguments": {"city": "Oslo"}},
            {"id": "call_b", "name": "weather", "arguments": {"city": "Rome"}},
            text="Checking both.",
        ),
    )

    events = events_of(model="gpt", tools=[WEATHER])

    kinds = [e.kind for e in events]
    assert kinds[0] == "attempt" and kinds[-1] == "done"
    assert kinds.index("tool_call") > max(i for i, k in enumerate(kinds) if k == "delta")
    pieces = [e.tool_call for e in events if e.kind == "tool_call"]
    assert [(p.index, p.id, p.name) for p in pieces if p.id] == [
        (0, "call_a", "weather"),
        (1, "call_b", "weather"),
    ]
    assert "".join(p.arguments for p in pieces if p.index == 1) == '{"city": "Rome"}'
    result = events[-1].result
    assert result.text == "Checking both."
    assert result.finish_reason == "tool_calls"
    assert [json_args(c) for c in result.tool_calls] == [{"city": "Oslo"}, {"city": "Rome"}]
    assert [c["id"] for c in result.tool_calls] == ["call_a", "call_b"]
    assert fake_provider.requests_for("gpt")[0].body["tools"] == [WEATHER]
    assert "tool_calls: " in CallRecord.objects.get().response_text


def json_args(call):
    return json.loads(call["function"]["arguments"])


def test_a_stream_that_only_calls_a_tool_counts_its_first_piece_as_the_first_token(fake_provider):
    fake_provider.model("gpt", capabilities=["tool_use"])
    fake_provider.script("gpt", Reply.tool_call("weather", {"city": "Oslo"}))

    events = events_of(model="gpt", tools=[WEATHER])

    result = events[-1].result
    assert result.text == "" and result.tool_calls[0]["function"]["name"] == "weather"
    assert result.ttft_ms is not None and result.ttft_ms <= result.latency_ms


def test_a_stream_cut_after_a_tool_call_piece_ends_in_an_error_without_falling_over(fake_provider):
    gpt = fake_provider.model("gpt", capabilities=["tool_use"])
    other = fake_provider.model("other", capabilities=["tool_use"])
    FallbackChainFactory(name="main", models=[gpt, other])
    fake_provider.script(
        "gpt",
        Reply.raw_stream(
            'data: {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", '
            '"type": "function", "function": {"name": "weather", "arguments": "{\\"ci"}}]}}]}\n\n'
        ),
    )

    events = events_of(chain="main", tools=[WEATHER])

    assert [e.kind for e in events] == ["attempt", "tool_call", "error"]
    assert fake_provider.requests_for("other") == []
    record = CallRecord.objects.get()
    assert record.status == "error" and '"call_1"' in record.response_text
