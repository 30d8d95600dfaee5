"""What a request needs of a model: `vision` for images, `tool_use` for tools or tool turns.
Selection filters on them, chain steps without them are skipped with the reason in the path,
and when nothing qualifies the error names the capability."""

import pytest
from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from routing.errors import NoCandidate
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply

PIXEL = (
    "data:image/png;base64,"
    + "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
IMAGE = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": PIXEL}},
        ],
    }
]
PLAIN = [{"role": "user", "content": "Hello"}]
WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


def test_a_chain_skips_a_model_without_vision_for_an_image_request(fake_provider):
    blind = fake_provider.model("blind", capabilities=["chat"])
    seeing = fake_provider.model("seeing", capabilities=["vision"])
    FallbackChainFactory(name="main", models=[blind, seeing])

    result = orchestrator.execute_with_fallback(IMAGE, chain="main")

    assert result.model == "seeing"
    assert [(s.model, s.category, s.reason) for s in result.skipped] == [("blind", "capability", "no vision")]
    assert fake_provider.requests_for("blind") == []
    sent = fake_provider.requests_for("seeing")[0].body["messages"][0]["content"]
    assert sent[1] == {"type": "image_url", "image_url": {"url": PIXEL}}


def test_the_same_chain_answers_a_text_request_from_its_first_model(fake_provider):
    FallbackChainFactory(
        name="main",
        models=[fake_provider.model("blind"), fake_provider.model("seeing", capabilities=["vision"])],
    )

    assert orchestrator.execute_with_fallback(PLAIN, chain="main").model == "blind"


def test_a_stream_reports_the_capability_skip_on_its_attempt_event(fake_provider):
    FallbackChainFactory(
        name="main",
        models=[fake_provider.model("blind"), fake_provider.model("seeing", capabilities=["vision"])],
    )

    async def run():
        return [e async for e in orchestrator.astream(IMAGE, chain="main")]

    events = async_to_sync(run)()

    assert events[0].kind == "attempt" and events[0].model == "seeing"
    assert [(s.model, s.reason) for s in events[0].skipped] == [("blind", "no vision")]
    assert events[-1].kind == "done"


def test_a_chain_skips_a_model_without_tool_use_when_tools_are_offered(fake_provider):
    plain = fake_provider.model("plain")
    agent = fake_provider.model("agent", capabilities=["tool_use"])
    FallbackChainFactory(name="main", models=[plain, agent])
    fake_provider.script("agent", Reply.tool_call("weather", {}))

    result = orchestrator.execute_with_fallback(PLAIN, chain="main", tools=[WEATHER])

    assert result.model == "agent" and result.tool_calls
    assert [(s.model, s.reason) for s in result.skipped] == [("plain", "no tool_use")]


def test_tools_that_may_not_be_called_need_no_tool_use(fake_provider):
    fake_provider.model("plain")

    result = orchestrator.complete(PLAIN, model="plain", tools=[WEATHER], tool_choice="none")

    assert result.model == "plain"


def test_a_history_with_tool_turns_needs_tool_use(fake_provider):
    FallbackChainFactory(
        name="main",
        models=[fake_provider.model("plain"), fake_provider.model("agent", capabilities=["tool_use"])],
    )
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    turns = [
        *PLAIN,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]

    assert orchestrator.execute_with_fallback(turns, chain="main").model == "agent"


def test_a_selection_picks_only_models_with_vision(fake_provider):
    fake_provider.model(
        "cheap-blind", capabilities=["chat"], input_cost_per_1k=0.0001, output_cost_per_1k=0.0001
    )
    fake_provider.model(
        "dear-seeing", capabilities=["chat", "vision"], input_cost_per_1k=1, output_cost_per_1k=1
    )

    assert orchestrator.complete(PLAIN, capabilities=["chat"]).model == "cheap-blind"
    assert orchestrator.complete(IMAGE, capabilities=["chat"]).model == "dear-seeing"


def test_a_named_model_without_vision_is_refused_naming_the_capability(fake_provider):
    fake_provider.model("blind")

    with pytest.raises(NoCandidate, match="no vision") as caught:
        orchestrator.complete(IMAGE, model="blind")

    assert "images" in caught.value.message
    assert fake_provider.requests_for("blind") == [] and not CallRecord.objects.exists()


def test_a_chain_where_no_model_has_tool_use_says_so(fake_provider):
    FallbackChainFactory(name="main", models=[fake_provider.model("a"), fake_provider.model("b")])

    with pytest.raises(NoCandidate, match="tool_use") as caught:
        orchestrator.execute_with_fallback(PLAIN, chain="main", tools=[WEATHER])

    assert caught.value.excluded == {"a": "no tool_use", "b": "no tool_use"}


def test_a_selection_where_no_model_has_vision_says_so(fake_provider):
    fake_provider.model("blind", capabilities=["chat", "vision"], enabled=False)
    fake_provider.model("other", capabilities=["chat"])

    with pytest.raises(NoCandidate, match="vision"):
        orchestrator.complete(IMAGE, capabilities=["chat"])


def test_the_record_shows_an_image_as_a_placeholder_never_its_bytes(fake_provider):
    fake_provider.model("seeing", capabilities=["vision"])

    orchestrator.complete(IMAGE, model="seeing")

    text = CallRecord.objects.get().request_text
    assert text == "user: What is in this picture?\n[image: image/png, 1 KB]"
    assert "base64" not in text
