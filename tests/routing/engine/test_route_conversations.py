"""Routes keep the whole conversation: the route's prompt first, the caller's own system
messages after it, the rest in order; the pre-processor on the last user text only; the
post-processor on a final answer, never on tool calls."""

from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from routing.models import PromptVersion
from tests.factories import TaskRouteFactory
from tests.fake_provider import Reply

CONVERSATION = [
    {"role": "user", "content": "  My name is Ada.  "},
    {"role": "assistant", "content": "Hello Ada."},
    {"role": "developer", "content": "Answer in one word."},
    {"role": "user", "content": "   What is my name?   "},
]
WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


def route_with_prompt(model, **fields):
    route = TaskRouteFactory(task_type="chat", model=model, **fields)
    route.active_prompt = PromptVersion.objects.create(
        route=route, version=1, system_prompt="You are the route."
    )
    route.save()
    return route


def test_a_multi_turn_conversation_goes_through_a_route_with_its_prompt_first(fake_provider):
    route_with_prompt(fake_provider.model("writer"), preprocessor="strip")
    fake_provider.script("writer", Reply.ok("Ada"))

    result = orchestrator.route("chat", CONVERSATION)

    assert result.text == "Ada"
    sent = fake_provider.requests_for("writer")[0].body["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("system", "You are the route."),
        ("system", "Answer in one word."),
        ("user", "  My name is Ada.  "),  # only the last user message is pre-processed
        ("assistant", "Hello Ada."),
        ("user", "What is my name?"),
    ]
    record = CallRecord.objects.get()
    assert record.request_text.startswith("system: You are the route.\n\nsystem: Answer in one word.")


def test_a_streamed_route_takes_the_conversation_as_messages(fake_provider):
    route_with_prompt(fake_provider.model("writer"))

    async def run():
        return [e async for e in orchestrator.astream(CONVERSATION, task_type="chat")]

    events = async_to_sync(run)()

    assert events[-1].kind == "done"
    sent = fake_provider.requests_for("writer")[0].body["messages"]
    assert [m["role"] for m in sent] == ["system", "system", "user", "assistant", "user"]


def test_the_postprocessor_leaves_tool_calls_and_their_preamble_alone(fake_provider):
    route_with_prompt(fake_provider.model("writer", capabilities=["tool_use"]), postprocessor="json")
    fake_provider.script("writer", Reply.tool_call("weather", {"city": "Oslo"}, text="Let me check."))

    result = orchestrator.route("chat", CONVERSATION, tools=[WEATHER])

    assert result.text == "Let me check."  # the json post-processor would have refused this
    assert result.tool_calls[0]["function"] == {"name": "weather", "arguments": '{"city": "Oslo"}'}
    assert CallRecord.objects.get().status == "ok"


def test_the_postprocessor_still_shapes_the_final_answer_after_a_tool_result(fake_provider):
    route_with_prompt(fake_provider.model("writer", capabilities=["tool_use"]), postprocessor="first_line")
    fake_provider.script("writer", Reply.ok("Sunny in Oslo.\nMore detail."))
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    turns = [
        *CONVERSATION,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]

    result = orchestrator.route("chat", turns, tools=[WEATHER])

    assert result.text == "Sunny in Oslo."
    record = CallRecord.objects.get()
    assert "  → weather({}) [c1]" in record.request_text and "tool (c1): sunny" in record.request_text
