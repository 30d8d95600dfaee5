"""The breaker panel: live breakers and each drill's own, as the engine holds them."""

import logging

import pytest

from compare.models import Drill, DrillStatus
from compare.services.drills import FaultInput, drill_create, drill_run
from dashboards.panels import breaker_panel
from routing.engine import breaker
from tests.compare.conftest import seed_default_chain

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["seed_default_chain"]


def fail(model: str, times: int) -> None:
    for _ in range(times):
        breaker.breaker_failure(model)


def test_a_drill_that_opened_a_circuit_shows_as_the_drills_never_as_live(
    seed_default_chain, settings, caplog
):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "BREAKER_FAILURES": 3, "RETRY_MAX": 0}
    drill = drill_create(
        user=None,
        target_kind="chain",
        target="default",
        faults=[FaultInput("gpt-4o", "server_error", 1.0)],
        requests=6,
        concurrency=1,
    )
    with caplog.at_level(logging.WARNING, logger="routing.engine.breaker"):
        drill_run(drill_id=drill.pk)
    panel = breaker_panel()
    assert panel["live"] == []  # the truth: live traffic's circuit never opened
    [shown] = panel["drills"]
    assert shown["id"] == drill.pk and not shown["running"]
    assert [(b["model"], b["state"]) for b in shown["breakers"]] == [("gpt-4o", "open")]
    # The log says the same: which breakers opened.
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("circuit for gpt-4o")]
    assert lines and all(f"gpt-4o (drill-{drill.pk}) opened" in line for line in lines)


def test_a_running_drills_open_circuits_are_read_live_from_its_scope(settings, caplog):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "BREAKER_FAILURES": 2}
    drill = Drill.objects.create(
        target_kind="chain", target="default", requests=5, prompt="hi", status=DrillStatus.RUNNING
    )
    with caplog.at_level(logging.WARNING, logger="routing.engine.breaker"):
        with breaker.breaker_scope(f"drill-{drill.pk}"):
            fail("sim-flaky", 2)
        fail("gpt-4o", 2)
    panel = breaker_panel()
    assert [(b["model"], b["state"], b["failures"]) for b in panel["live"]] == [("gpt-4o", "open", 2)]
    assert panel["live"][0]["opened_at"] is not None
    [shown] = panel["drills"]
    assert shown["running"]
    assert [(b["model"], b["state"]) for b in shown["breakers"]] == [("sim-flaky", "open")]
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("circuit for gpt-4o opened") for m in said)  # live: no scope named
    assert any(m.startswith(f"circuit for sim-flaky (drill-{drill.pk}) opened") for m in said)


def test_the_dashboard_shows_live_and_drill_breakers_apart(member_client, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "BREAKER_FAILURES": 1}
    drill = Drill.objects.create(
        target_kind="chain", target="default", requests=5, prompt="hi", status=DrillStatus.RUNNING
    )
    with breaker.breaker_scope(f"drill-{drill.pk}"):
        fail("sim-flaky", 1)
    body = member_client.get("/dashboard/").content.decode()
    live, drills = body.split("Fault drills", 1)
    assert "every model&#x27;s circuit is closed" in live or "every model's circuit is closed" in live
    assert "sim-flaky" not in live
    assert f"Drill #{drill.pk}" in drills and "sim-flaky" in drills
