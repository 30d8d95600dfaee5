"""Errors a client can act on, through the official `openai` client with its default retries:
a target that can never answer as configured is a 400 the SDK does not retry, naming what to
fix; a transient failure keeps its 5xx."""

import httpx2
import openai
import pytest

from gateway.services import api_key_create
from tests.factories import FallbackChainFactory

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hello"}]
MISSING = "ORCH_TEST_MISSING_KEY"


class Counted:
    """An openai client with the SDK's default retries, counting the HTTP requests it sends."""

    def __init__(self, live_url: str) -> None:
        self.sent: list[str] = []
        http = httpx2.Client(event_hooks={"request": [lambda r: self.sent.append(r.url.path)]})
        self.client = openai.OpenAI(
            base_url=f"{live_url}/v1", api_key=api_key_create(name="app")[1], http_client=http, timeout=20
        )


@pytest.fixture
def keyless(fake_provider, monkeypatch):
    monkeypatch.delenv(MISSING, raising=False)
    return fake_provider.model("keyless", provider=fake_provider.provider(name="nokey", api_key_env=MISSING))


@pytest.fixture
def disabled(fake_provider):
    return fake_provider.model("switched-off", provider=fake_provider.provider(name="off", enabled=False))


def test_a_model_whose_key_variable_is_unset_is_a_400_the_sdk_does_not_retry(
    live_url, keyless, fake_provider
):
    counted = Counted(live_url)
    with pytest.raises(openai.BadRequestError) as refused:
        counted.client.chat.completions.create(model="keyless", messages=HELLO)
    assert counted.sent == ["/v1/chat/completions"]  # exactly one request: no retry
    error = refused.value.body
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "model_not_available",
        "model",
    )
    assert MISSING in error["message"]
    assert fake_provider.requests_for("keyless") == []


def test_a_streamed_request_to_it_is_refused_the_same_way(live_url, keyless):
    counted = Counted(live_url)
    with pytest.raises(openai.BadRequestError) as refused:
        counted.client.chat.completions.create(model="keyless", messages=HELLO, stream=True)
    assert len(counted.sent) == 1
    assert refused.value.body["code"] == "model_not_available" and MISSING in refused.value.message


def test_a_model_whose_provider_is_disabled_is_a_400_the_sdk_does_not_retry(live_url, disabled):
    counted = Counted(live_url)
    with pytest.raises(openai.BadRequestError) as refused:
        counted.client.chat.completions.create(model="switched-off", messages=HELLO)
    assert len(counted.sent) == 1
    assert refused.value.body["code"] == "model_not_available"
    assert "provider off disabled" in refused.value.message


def test_a_chain_whose_every_step_is_unusable_says_why_each_is(live_url, keyless, disabled):
    FallbackChainFactory(name="dead", models=[keyless, disabled])
    counted = Counted(live_url)
    with pytest.raises(openai.BadRequestError) as refused:
        counted.client.chat.completions.create(model="chain:dead", messages=HELLO)
    assert len(counted.sent) == 1
    error = refused.value.body
    assert error["code"] == "model_not_available"
    assert MISSING in error["message"] and "disabled" in error["message"]
    assert set(error["excluded"]) == {"keyless", "switched-off"}


def test_a_chain_that_fails_for_a_transient_reason_keeps_its_5xx(live_url, fake_provider, settings):
    from tests.fake_provider import Reply

    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0}
    model = fake_provider.model("flaky")
    FallbackChainFactory(name="flaky", models=[model])
    fake_provider.set_default("flaky", Reply.server_error(503))
    client = openai.OpenAI(base_url=f"{live_url}/v1", api_key=api_key_create(name="x")[1], max_retries=0)
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(model="chain:flaky", messages=HELLO)
    assert failed.value.status_code == 502
