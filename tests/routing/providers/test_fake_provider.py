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
