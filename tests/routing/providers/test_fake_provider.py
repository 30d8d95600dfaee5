"""The fake provider server itself: scripting order, defaults and what it records."""

from __future__ import annotations

import pytest

from routing.errors import TransientError
from tests.fake_provider import FAKE_KEY_ENV, FakeProvider, FakeProviderServer, Reply
from tests.routing.providers.conftest import complete, request


def test_scripted_replies_are_used_in_order_then_the_default(fake_provider):
    spec = fake_provider.spec("openai")
    fake_provider.script("m1", Reply.ok("first"), Reply.ok("second"))

    texts = [complete(spec, request("m1")).text for _ in range(3)]

    assert texts[:2] == ["first", "second"]
    assert texts[2].startswith("Echo: ")


def test_a_wildcard_script_serves_any_model(fake_provider):
    fake_provider.script("*", Reply.ok("anyone"))

    assert complete(fake_provider.spec("anthropic"), request("whatever")).text == "anyone"


def test_a_per_model_default_is_not_used_up(fake_provider):
    fake_provider.set_default("m1", Reply.ok("always"))
    spec = fake_provider.spec("openai")

    assert [complete(spec, request("m1")).text for _ in range(2)] == ["always", "always"]
    assert complete(spec, request("m2")).text.startswith("Echo: ")


def test_it_records_the_request_it_received(fake_provider):
    complete(fake_provider.spec("openai"), request("m1", max_tokens=9))

    [received] = fake_provider.requests_for("m1")
    assert received.method == "POST"
    assert received.wire == "openai"
    assert received.body["messages"][-1]["content"] == "What is the capital of France?"
    assert received.completed and not received.disconnected


def test_a_plain_server_serves_on_its_own_port_until_stopped(monkeypatch):
    monkeypatch.setenv(FAKE_KEY_ENV, "sk-test")
    server = FakeProviderServer().start()
    try:
        spec = FakeProvider(server).spec("openai")
        assert complete(spec, request("m1")).text
        assert len(server.history) == 1
    finally:
        server.stop()

    with pytest.raises(TransientError):  # nothing listens any more
        complete(spec, request("m1"))


def test_a_mix_answers_each_reply_at_its_rate_and_repeats_with_its_seed(fake_provider):
    spec = fake_provider.spec("openai")

    def outcomes() -> list[str]:
        fake_provider.set_mix("m1", [(0.25, Reply.ok("mixed")), (0.25, Reply.server_error())], seed=3)
        texts = []
        for _ in range(200):
            try:
                texts.append(complete(spec, request("m1")).text)
            except TransientError:
                texts.append("error")
        return texts

    first = outcomes()
    assert 30 <= first.count("mixed") <= 70 and 30 <= first.count("error") <= 70
    assert sum(t.startswith("Echo: ") for t in first) == 200 - first.count("mixed") - first.count("error")
    assert outcomes() == first


def test_a_mix_cannot_promise_more_than_every_request():
    with pytest.raises(ValueError, match="more than 1"):
        FakeProviderServer().set_mix("m1", [(0.6, Reply.reset()), (0.6, Reply.hang())])


def test_an_echo_auth_error_repeats_the_credentials_it_received(fake_provider):
    import httpx

    fake_provider.script("m1", Reply.echo_auth())
    response = httpx.post(
        f"{fake_provider.url}/v1/chat/completions",
        json={"model": "m1", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": "Bearer sk-echo-me"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Rejected credentials: Bearer sk-echo-me"
