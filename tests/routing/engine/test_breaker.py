"""The circuit breaker: opens after N failures in the window, half-opens after the cooldown
(one probe), closes on success. The clock is moved by hand, never slept on."""

import itertools
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from routing import orchestrator
from routing.engine import breaker
from routing.errors import AllAttemptsFailed
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply

MESSAGES = [{"role": "user", "content": "ping"}]


_starts = itertools.count()


class Clock:
    def __init__(self) -> None:
        # Failures are counted per slice of time in the shared cache: each test has its own
        # stretch of time, so none reads what another left behind.
        self.now = 1_000_000.0 + 10_000 * next(_starts)

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


def test_failures_count_across_slices_of_the_window(clock):
    breaker.breaker_failure("flaky")
    clock.now += 50  # five slices later, still inside the window
    breaker.breaker_failure("flaky")

    assert breaker.breaker_states()["flaky"] == {"state": "open", "failures": 2, "opened_at": clock.now}


def test_a_success_clears_the_failures_counted_so_far(fake_provider, chain, clock):
    fake_provider.script("flaky", Reply.server_error(), Reply.ok("fine"), Reply.server_error())
    for _ in range(3):
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


def test_failures_recorded_at_the_same_moment_by_many_workers_are_all_counted(clock, settings):
    """Workers record one failure each, all at once, against the real shared cache (Redis in
    the PostgreSQL + Redis run), round after round: none may be lost, so every round ends
    with the circuit open and every failure counted."""
    workers, rounds = 8, 200
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "BREAKER_FAILURES": workers}
    outcomes: list[tuple[str, int]] = []

    def round_over() -> None:  # run by one worker once all have recorded theirs
        state = breaker.breaker_states().get("busy", {})
        outcomes.append((state.get("state", "closed"), state.get("failures", 0)))
        breaker.breaker_reset("busy")

    start, end = threading.Barrier(workers), threading.Barrier(workers, action=round_over)

    def worker() -> None:
        for _ in range(rounds):
            start.wait()
            breaker.breaker_failure("busy")
            end.wait()

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # let the threads interleave inside each call
    try:
        with ThreadPoolExecutor(workers) as pool:
            for done in [pool.submit(worker) for _ in range(workers)]:
                done.result(timeout=120)
    finally:
        sys.setswitchinterval(previous)

    assert outcomes == [("open", workers)] * rounds


def test_successful_calls_on_a_closed_circuit_read_the_cache_once_per_memo_period(monkeypatch):
    """The gateway's hot path: one cache round trip when the in-process copy is refreshed,
    none per call, nothing written."""
    from django.core.cache import cache

    used: list[str] = []
    inside = threading.local()

    def counted(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if not getattr(inside, "depth", 0):  # locmem's get_many calls its get: one round trip
                used.append(name)
            inside.depth = getattr(inside, "depth", 0) + 1
            try:
                return real(*args, **kwargs)
            finally:
                inside.depth -= 1

        return call

    for name in ("get", "get_many", "set", "add", "incr", "delete", "delete_many"):
        monkeypatch.setattr(cache, name, counted(name, getattr(cache, name)))
    monkeypatch.setattr(breaker, "MEMO_TTL_S", 3600)

    for _ in range(100):
        assert not breaker.breaker_is_open("steady")
        breaker.breaker_success("steady")

    assert used == ["get_many"]
