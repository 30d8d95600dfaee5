"""n answers from a kind without its own `n`: n calls of the same step at once, each recorded
and priced, merged into one Result; and chat options a kind refuses pass its model over."""

from decimal import Decimal

import pytest

from metrics.models import CallRecord
from routing import orchestrator
from routing.errors import InvalidRequest
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply

MESSAGES = [{"role": "user", "content": "Name a colour."}]
PRICES = {"input_cost_per_1k": Decimal("1"), "output_cost_per_1k": Decimal("2")}


def local_model(fake_provider, name="local", **fields):
    return fake_provider.model(name, kind="openai_compatible", **fields)


def test_n_three_without_native_n_is_three_recorded_calls_merged_into_one_result(fake_provider):
    local_model(fake_provider, **PRICES)
    fake_provider.script("local", Reply.ok("red"), Reply.ok("green"), Reply.ok("blue"))

    result = orchestrator.complete(MESSAGES, model="local", n=3)

    received = fake_provider.requests_for("local")
    assert len(received) == 3 and all("n" not in r.body for r in received)
    assert sorted([result.text, *(c["text"] for c in result.more_choices)]) == ["blue", "green", "red"]
    records = list(CallRecord.objects.filter(trace_id=result.trace_id).order_by("attempt"))
    assert [(r.attempt, r.status) for r in records] == [(1, "ok"), (2, "ok"), (3, "ok")]
    assert result.usage.output_tokens == sum(r.output_tokens for r in records) == 3
    assert result.cost_usd == sum(r.cost_usd for r in records)
    assert len(result.attempts) == 3


def test_one_failed_call_of_the_n_falls_over_to_the_next_model(fake_provider, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0}
    FallbackChainFactory(
        name="main", models=[local_model(fake_provider), local_model(fake_provider, "spare")]
    )
    fake_provider.script("local", Reply.ok("red"), Reply.model_not_found())

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main", n=2)

    assert result.model == "spare" and len(result.more_choices) == 1
    statuses = sorted(CallRecord.objects.filter(trace_id=result.trace_id).values_list("model_name", "status"))
    assert statuses == [("local", "error"), ("local", "ok"), ("spare", "ok"), ("spare", "ok")]


def test_a_kind_that_refuses_logprobs_is_passed_over_with_the_reason(fake_provider, settings):
    settings.ORCHESTRATOR = {
        **settings.ORCHESTRATOR,
        "PROVIDER_KINDS": {"refusing": "tests.routing.engine.refusing_kind.make_client"},
    }
    refusing = fake_provider.model("refusing-model", kind="refusing")
    FallbackChainFactory(name="main", models=[refusing, fake_provider.model("gpt")])

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main", logprobs=True)

    assert result.model == "gpt" and result.logprobs is not None
    assert [(s.model, s.category, s.reason) for s in result.skipped] == [
        ("refusing-model", "unsupported", "refusing-model: logprobs not supported by refusing")
    ]
    assert fake_provider.requests_for("refusing-model") == []


def test_when_every_model_refuses_the_error_names_the_param(fake_provider, settings):
    settings.ORCHESTRATOR = {
        **settings.ORCHESTRATOR,
        "PROVIDER_KINDS": {"refusing": "tests.routing.engine.refusing_kind.make_client"},
    }
    FallbackChainFactory(name="main", models=[fake_provider.model("r1", kind="refusing")])

    with pytest.raises(InvalidRequest, match="logprobs not supported") as caught:
        orchestrator.execute_with_fallback(MESSAGES, chain="main", logprobs=True)

    assert caught.value.param == "logprobs"
    with pytest.raises(InvalidRequest) as named:
        orchestrator.complete(MESSAGES, model="r1", logprobs=True)
    assert named.value.param == "logprobs"
