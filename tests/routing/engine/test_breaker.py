"""The circuit breaker: opens after N failures in the window, half-opens after the cooldown
(one probe), closes on success. The clock is moved by hand, never slept on."""

import asyncio
import itertools
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from routing import orchestrator
from routing.engine import breaker
from routing.errors import AllAttemptsFailed
from routing.shared_cache import shared_cache
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
    cache = shared_cache()

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


def _in_flight_then(fake_provider, clock, *, count: int, when_received) -> list[Any]:
    """Send `count` calls to "flaky" whose replies are held; once all have reached the
    provider, run `when_received()` (the circuit changes meanwhile), then let them finish."""

    async def scenario() -> list[Any]:
        calls = [
            asyncio.ensure_future(orchestrator.acomplete(MESSAGES, model="flaky", chain="main"))
            for _ in range(count)
        ]
        deadline = time.monotonic() + 10
        while len(fake_provider.requests_for("flaky")) < count:
            assert time.monotonic() < deadline, "the held calls never reached the provider"
            await asyncio.sleep(0.01)
        when_received()
        fake_provider.release("slow")
        return await asyncio.gather(*calls, return_exceptions=True)

    return async_to_sync(scenario)()


def test_successes_in_flight_when_the_circuit_opened_do_not_close_it(fake_provider, chain, clock):
    fake_provider.script("flaky", *[Reply.held("slow")] * 3)

    def circuit_opens() -> None:
        clock.now += 1
        breaker.breaker_failure("flaky")
        breaker.breaker_failure("flaky")

    results = _in_flight_then(fake_provider, clock, count=3, when_received=circuit_opens)

    assert [r.model for r in results] == ["flaky"] * 3
    assert breaker.breaker_states()["flaky"]["state"] == "open"
    assert breaker.breaker_is_open("flaky") is True  # the cooldown is honoured


def test_failures_in_flight_when_the_probe_began_do_not_reopen_the_circuit(fake_provider, chain, clock):
    fake_provider.script("flaky", *[Reply.held("slow", Reply.server_error())] * 2, Reply.ok("probe"))

    def circuit_opens_then_half_opens() -> None:
        clock.now += 1
        breaker.breaker_failure("flaky")
        breaker.breaker_failure("flaky")
        clock.now += 31
        assert breaker.breaker_is_open("flaky") is False  # we are the probe
        clock.now += 1

    _in_flight_then(fake_provider, clock, count=2, when_received=circuit_opens_then_half_opens)

    assert breaker.breaker_states()["flaky"]["state"] == "half_open"
    breaker.breaker_success("flaky", started_at=clock.now)  # the probe's own success
    assert breaker.breaker_states()["flaky"]["state"] == "closed"


def test_a_success_that_began_after_the_opening_closes_the_circuit(clock):
    breaker.breaker_failure("flaky")
    breaker.breaker_failure("flaky")
    begun_before = clock.now - 1
    breaker.breaker_success("flaky", started_at=begun_before)
    assert breaker.breaker_states()["flaky"]["state"] == "open"

    clock.now += 1
    breaker.breaker_success("flaky", started_at=breaker.breaker_attempt_start())

    assert breaker.breaker_states()["flaky"]["state"] == "closed"


def test_an_opening_seen_by_many_workers_at_once_is_logged_once(clock, settings, caplog):
    """Workers fail together, round after round, each seeing the threshold reached: each
    opening is logged (and written) by one of them only."""
    workers, rounds = 6, 40
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "BREAKER_FAILURES": 1}
    start, end = (
        threading.Barrier(workers),
        threading.Barrier(workers, action=lambda: breaker.breaker_reset("busy")),
    )

    def worker() -> None:
        for _ in range(rounds):
            start.wait()
            breaker.breaker_failure("busy")
            end.wait()

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(workers) as pool:
            for done in [pool.submit(worker) for _ in range(workers)]:
                done.result(timeout=120)
    finally:
        sys.setswitchinterval(previous)

    opened = [r for r in caplog.records if "circuit for busy opened" in r.getMessage()]
    assert len(opened) == rounds


def test_a_failure_counted_while_a_success_deletes_the_counter_is_not_lost(clock, monkeypatch):
    """The first failure of a slice creates its counter; a success's delete lands right after
    that creation, before anything else touches the counter. The failure is still counted,
    and nothing raises (it used to be `incr` on the deleted key: ValueError, failure lost)."""
    cache = shared_cache()

    real_add = cache.add

    def add_then_a_success_deletes(key: str, *args: Any, **kwargs: Any) -> bool:
        added = real_add(key, *args, **kwargs)
        if ":failures:" in key and kwargs.get("timeout") and args == (0,):
            cache.delete(key)  # only the empty counter vanishes; one holding a count is kept
        return added

    with monkeypatch.context() as patched:
        patched.setattr(cache, "add", add_then_a_success_deletes)
        breaker.breaker_failure("flaky")

    assert breaker.breaker_states()["flaky"]["failures"] == 1


def test_drill_breakers_are_listed_apart_from_live_traffic_and_logged_with_their_scope(clock, caplog):
    with breaker.breaker_scope("drill-7"):
        breaker.breaker_failure("sim-flaky")
        breaker.breaker_failure("sim-flaky")

    assert breaker.breaker_states() == {}
    assert "drill-7" in breaker.breaker_scopes()
    assert breaker.breaker_states(scope="drill-7")["sim-flaky"]["state"] == "open"
    assert any("circuit for sim-flaky (drill-7) opened" in r.getMessage() for r in caplog.records)
    breaker.breaker_reset(scope="drill-7")
