"""The circuit breaker: opens after N failures in the window, half-opens after the cooldown
(one probe), closes on success. The clock is moved by hand, never slept on."""

import pytest

from routing import orchestrator
from routing.engine import breaker
from routing.errors import AllAttemptsFailed
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply

MESSAGES = [{"role": "user", "content": "ping"}]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch, settings):
    settings.ORCHESTRATOR = {
        **settings.ORCHESTRATOR,
        "RETRY_MAX": 0,
        "BREAKER_FAILURES": 2,
        "BREAKER_WINDOW_S": 60,
        "BREAKER_COOLDOWN_S": 30,
    }
    fake = Clock()
    monkeypatch.setattr(breaker, "_now", fake)
    monkeypatch.setattr(breaker, "MEMO_TTL_S", 0)
    return fake


@pytest.fixture
def chain(fake_provider, clock):
    flaky = fake_provider.model("flaky")
    steady = fake_provider.model("steady")
    return FallbackChainFactory(name="main", models=[flaky, steady])


def test_it_opens_after_the_threshold_and_skips_the_model(fake_provider, chain):
    fake_provider.script("flaky", Reply.server_error(), Reply.server_error())
    orchestrator.execute_with_fallback(MESSAGES, chain="main")
    assert breaker.breaker_states()["flaky"]["state"] == "closed"
    orchestrator.execute_with_fallback(MESSAGES, chain="main")
    assert breaker.breaker_states()["flaky"]["state"] == "open"

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert result.model == "steady"
    assert [a.model for a in result.attempts] == ["steady"]
    assert len(fake_provider.requests_for("flaky")) == 2


def test_failures_outside_the_window_do_not_count(fake_provider, chain, clock):
    fake_provider.script("flaky", Reply.server_error(), Reply.server_error())
    orchestrator.execute_with_fallback(MESSAGES, chain="main")
    clock.now += 61
    orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert breaker.breaker_states()["flaky"] == {"state": "closed", "failures": 1, "opened_at": None}


def test_it_half_opens_after_the_cooldown_and_a_successful_probe_closes_it(fake_provider, chain, clock):
    fake_provider.script("flaky", Reply.server_error(), Reply.server_error())
    orchestrator.execute_with_fallback(MESSAGES, chain="main")
    orchestrator.execute_with_fallback(MESSAGES, chain="main")
    clock.now += 31
    assert breaker.breaker_states()["flaky"]["state"] == "half_open"

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert result.model == "flaky"
    assert len(fake_provider.requests_for("flaky")) == 3
    assert breaker.breaker_states()["flaky"]["state"] == "closed"


def test_a_failed_probe_opens_it_again_for_another_cooldown(fake_provider, chain, clock):
    fake_provider.script("flaky", Reply.server_error(), Reply.server_error(), Reply.server_error())
    orchestrator.execute_with_fallback(MESSAGES, chain="main")
    orchestrator.execute_with_fallback(MESSAGES, chain="main")
    clock.now += 31

    probe = orchestrator.execute_with_fallback(MESSAGES, chain="main")
    after = orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert [a.model for a in probe.attempts] == ["flaky", "steady"]
    assert [a.model for a in after.attempts] == ["steady"]
    assert breaker.breaker_states()["flaky"]["state"] == "open"


def test_only_one_caller_gets_the_probe(fake_provider, chain, clock):
    fake_provider.script("flaky", Reply.server_error(), Reply.server_error())
    orchestrator.execute_with_fallback(MESSAGES, chain="main")
    orchestrator.execute_with_fallback(MESSAGES, chain="main")
    clock.now += 31

    assert breaker.breaker_is_open("flaky") is False  # this caller probes
    assert breaker.breaker_is_open("flaky") is True  # everyone else still skips


def test_it_answers_503_when_every_candidate_circuit_is_open(fake_provider, chain):
    fake_provider.script("flaky", Reply.server_error(), Reply.server_error())
    fake_provider.script("steady", Reply.server_error(), Reply.server_error())
    for _ in range(2):
        with pytest.raises(AllAttemptsFailed):
            orchestrator.execute_with_fallback(MESSAGES, chain="main")

    with pytest.raises(AllAttemptsFailed) as caught:
        orchestrator.execute_with_fallback(MESSAGES, chain="main")

    assert caught.value.http_status == 503
    assert caught.value.attempts == []
    assert len(fake_provider.history) == 4


def test_selection_skips_a_model_whose_circuit_is_open(fake_provider, clock):
    fake_provider.model("cheap", capabilities=["chat"], input_cost_per_1k=0.001, output_cost_per_1k=0.001)
    fake_provider.model("dear", capabilities=["chat"], input_cost_per_1k=1, output_cost_per_1k=1)
    breaker.breaker_failure("cheap")
    breaker.breaker_failure("cheap")

    assert orchestrator.select_model(["chat"]) == "dear"


def test_failures_inside_a_breaker_scope_open_only_that_scopes_circuit(clock):
    with breaker.breaker_scope("drill-1"):
        breaker.breaker_failure("gpt-x")
        breaker.breaker_failure("gpt-x")
        assert breaker.breaker_is_open("gpt-x")
    assert not breaker.breaker_is_open("gpt-x")
    assert breaker.breaker_states() == {}
    assert breaker.breaker_states(scope="drill-1")["gpt-x"]["state"] == "open"
    breaker.breaker_reset(scope="drill-1")
    assert breaker.breaker_states(scope="drill-1") == {}
