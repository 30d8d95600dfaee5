"""n, logprobs and reasoning effort through the engine on the Anthropic and Gemini kinds:
Anthropic has no n of its own (n recorded calls merged) and refuses logprobs; Gemini answers n
itself (candidateCount, one call) and returns logprobs."""

from decimal import Decimal

import pytest

from metrics.models import CallRecord
from routing import orchestrator
from routing.errors import InvalidRequest
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply

MESSAGES = [{"role": "user", "content": "Name a colour."}]
PRICES = {"input_cost_per_1k": Decimal("1"), "output_cost_per_1k": Decimal("2")}
WEATHER = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


def test_n_three_on_an_anthropic_model_is_three_recorded_priced_calls_in_one_result(fake_provider):
    fake_provider.model("claude", kind="anthropic", **PRICES)
    fake_provider.script("claude", Reply.ok("red"), Reply.ok("green"), Reply.ok("blue"))

    result = orchestrator.complete(MESSAGES, model="claude", n=3)

    received = fake_provider.requests_for("claude")
    assert len(received) == 3 and all(r.wire == "anthropic" for r in received)
    assert sorted([result.text, *(c["text"] for c in result.more_choices)]) == ["blue", "green", "red"]
    records = CallRecord.objects.filter(trace_id=result.trace_id)
    assert records.count() == 3 and all(r.cost_usd > 0 for r in records)
    assert result.cost_usd == sum(r.cost_usd for r in records)


def test_n_three_on_a_gemini_model_is_one_call_for_three_candidates(fake_provider):
    fake_provider.model("gem", kind="gemini", **PRICES)
    fake_provider.script("gem", Reply.ok("red"))

    result = orchestrator.complete(MESSAGES, model="gem", n=3)

    (received,) = fake_provider.requests_for("gem")
    assert received.body["generationConfig"]["candidateCount"] == 3
    assert [result.text, *(c["text"] for c in result.more_choices)] == ["red", "red", "red"]
    assert CallRecord.objects.filter(trace_id=result.trace_id).count() == 1


def test_logprobs_pass_an_anthropic_model_over_and_gemini_returns_them(fake_provider):
    claude = fake_provider.model("claude", kind="anthropic")
    FallbackChainFactory(name="main", models=[claude, fake_provider.model("gem", kind="gemini")])
    fake_provider.script("gem", Reply.ok("red"))

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main", logprobs=True, top_logprobs=2)

    assert result.model == "gem"
    assert result.logprobs["content"][0]["token"] == "red"  # type: ignore[index]
    assert [(s.model, s.category) for s in result.skipped] == [("claude", "unsupported")]
    assert "logprobs not supported by anthropic" in result.skipped[0].reason
    assert fake_provider.requests_for("claude") == []


def test_an_anthropic_model_named_alone_with_logprobs_or_effort_and_tools_is_a_400_naming_the_param(
    fake_provider,
):
    fake_provider.model("claude", kind="anthropic", capabilities=["tool_use"])

    with pytest.raises(InvalidRequest) as logprobs:
        orchestrator.complete(MESSAGES, model="claude", logprobs=True)
    with pytest.raises(InvalidRequest) as effort:
        orchestrator.complete(MESSAGES, model="claude", tools=[WEATHER], reasoning_effort="high")

    assert (logprobs.value.param, effort.value.param) == ("logprobs", "reasoning_effort")
    assert fake_provider.history == []


def test_reasoning_tokens_from_gemini_reach_the_result(fake_provider):
    fake_provider.model("gem", kind="gemini")
    fake_provider.script("gem", Reply.ok("red", output_tokens=1, reasoning_tokens=40))

    result = orchestrator.complete(MESSAGES, model="gem", reasoning_effort="medium")

    assert fake_provider.history[0].body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 8192}
    assert (result.usage.output_tokens, result.usage.reasoning_tokens) == (41, 40)
