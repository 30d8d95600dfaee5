"""Text that cannot be sent (a lone surrogate) is refused at the engine's door: a 400 naming
the field, before anything is sent or recorded, and no provider is blamed."""

import pytest
from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from routing.engine.breaker import breaker_states
from routing.errors import InvalidRequest

LONE_SURROGATE = [{"role": "user", "content": "x\ud800y"}]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_text_that_cannot_be_encoded_is_refused_before_anything_is_sent(fake_provider, kind):
    fake_provider.model("m1", kind=kind)

    with pytest.raises(InvalidRequest, match="cannot be encoded") as caught:
        orchestrator.complete(LONE_SURROGATE, model="m1")

    assert caught.value.param == "messages[0].content"
    assert fake_provider.requests_for("m1") == []
    assert not CallRecord.objects.exists()
    assert "m1" not in breaker_states()


def test_a_system_prompt_that_cannot_be_encoded_is_refused_too(fake_provider):
    fake_provider.model("m1")

    with pytest.raises(InvalidRequest) as caught:
        orchestrator.complete([{"role": "user", "content": "hi"}], model="m1", system="x\ud800")

    assert caught.value.param == "system"
    assert fake_provider.requests_for("m1") == []


def test_a_streamed_request_that_cannot_be_encoded_raises_before_any_event(fake_provider):
    fake_provider.model("m1", kind="anthropic")

    async def collected():
        return [event async for event in orchestrator.astream(LONE_SURROGATE, model="m1")]

    with pytest.raises(InvalidRequest) as caught:
        async_to_sync(collected)()

    assert caught.value.param == "messages[0].content"
    assert fake_provider.requests_for("m1") == [] and not CallRecord.objects.exists()


def test_the_same_model_still_answers_other_callers_afterwards(fake_provider):
    fake_provider.model("m1", kind="openai")
    with pytest.raises(InvalidRequest):
        orchestrator.complete(LONE_SURROGATE, model="m1")

    result = orchestrator.complete([{"role": "user", "content": "fine text"}], model="m1")

    assert result.text == "Echo: fine text"
