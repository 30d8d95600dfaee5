"""Requests that fail before a byte reaches the provider: the caller's fault, never the provider's."""

import pytest
from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from routing.engine.breaker import breaker_is_open, breaker_states
from routing.errors import InvalidRequest

LONE_SURROGATE = [{"role": "user", "content": "x\ud800y"}]


@pytest.fixture
def strict_breaker(settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "BREAKER_FAILURES": 2, "RETRY_BASE_S": 0.001}


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_text_that_cannot_be_encoded_is_refused_without_calling_or_blaming_the_provider(
    fake_provider, strict_breaker, kind
):
    fake_provider.model("m1", kind=kind)

    for _ in range(3):
        with pytest.raises(InvalidRequest, match="could not be sent"):
            orchestrator.complete(LONE_SURROGATE, model="m1")

    assert fake_provider.requests_for("m1") == []
    assert not breaker_is_open("m1")
    assert breaker_states().get("m1", {}).get("failures", 0) == 0
    records = list(CallRecord.objects.filter(model_name="m1"))
    assert len(records) == 3  # one attempt each: never retried
    assert {r.error_class for r in records} == {"request_invalid"}
    assert all(r.text_replaced and r.request_text == "user: x\ufffdy" for r in records)


def test_the_same_model_still_answers_other_callers_afterwards(fake_provider, strict_breaker):
    fake_provider.model("m1", kind="openai")
    for _ in range(3):
        with pytest.raises(InvalidRequest):
            orchestrator.complete(LONE_SURROGATE, model="m1")

    result = orchestrator.complete([{"role": "user", "content": "fine text"}], model="m1")

    assert result.text == "Echo: fine text"


def test_a_streamed_request_that_cannot_be_encoded_ends_as_invalid_and_blames_no_one(
    fake_provider, strict_breaker
):
    fake_provider.model("m1", kind="anthropic")

    async def collected():
        return [event async for event in orchestrator.astream(LONE_SURROGATE, model="m1")]

    for _ in range(3):
        ends = async_to_sync(collected)()
        assert ends[-1].kind == "error" and ends[-1].error_class == "request_invalid"
        assert "could not be sent" in ends[-1].error

    assert fake_provider.requests_for("m1") == []
    assert not breaker_is_open("m1")
    records = list(CallRecord.objects.filter(model_name="m1"))
    assert len(records) == 3 and {r.error_class for r in records} == {"request_invalid"}
