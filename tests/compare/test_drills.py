"""Fault drills through the real engine, from the service and from `manage.py drill`."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from compare.models import Drill
from compare.services.drills import DrillInputError, FaultInput, drill_create, drill_run, fault_parse
from metrics.models import CallRecord

pytestmark = pytest.mark.django_db(transaction=True)


def run_drill(**kwargs):
    drill = drill_create(user=None, **kwargs)
    return drill_run(drill_id=drill.pk)


def test_the_default_chain_with_its_first_model_down_is_served_by_the_next(seed_default_chain):
    drill = run_drill(
        target_kind="chain",
        target="default",
        faults=[FaultInput("gpt-4o", "server_error", 1.0)],
        requests=12,
        concurrency=3,
    )
    report = drill.report
    assert drill.status == "done"
    assert report["success_rate"] == 1.0 and drill.success_rate == 1.0
    assert report["served_by"] == {"claude-3.5-sonnet": 12}
    # Requests tried gpt-4o (with retries) until its breaker opened, then went straight to
    # claude; claude answered every one.
    tried_first = 0
    for request in report["requests_detail"]:
        path = request["path"]
        assert path[-1]["model"] == "claude-3.5-sonnet" and path[-1]["status"] == "ok"
        assert all(p["model"] == "gpt-4o" and p["status"] != "ok" for p in path[:-1])
        tried_first += path[0]["model"] == "gpt-4o"
        assert request["added_latency_ms"] is not None and request["added_latency_ms"] >= 0
    assert tried_first >= 1
    assert [o["model"] for o in report["breakers"]["opened"]] == ["gpt-4o"]
    assert report["never_tried"]["gpt-4o"] == 12 - tried_first


def test_the_report_figures_match_the_call_records(seed_default_chain):
    drill = run_drill(
        target_kind="chain",
        target="default",
        faults=[FaultInput("gpt-4o", "rate_limit", 1.0)],
        requests=8,
        concurrency=2,
    )
    report = drill.report
    traces = [r["trace_id"] for r in report["requests_detail"]]
    records = CallRecord.objects.filter(trace_id__in=traces)
    assert set(records.values_list("source", flat=True)) == {"drill"}
    assert records.count() == report["attempts"] == report["records"]["total"]
    assert records.filter(status="ok").count() == report["ok"] == 8
    served = {}
    for record in records.filter(status="ok"):
        served[record.model_name] = served.get(record.model_name, 0) + 1
    assert served == report["served_by"]
    # The faulted model failed on every attempt with a 429.
    faulted = records.filter(model_name="gpt-4o")
    tried = sum(1 for r in report["requests_detail"] for p in r["path"] if p["model"] == "gpt-4o")
    assert faulted.count() == tried >= 1
    assert set(faulted.values_list("http_status", flat=True)) == {429}
    assert set(faulted.values_list("status", flat=True)) == {"error"}
    # Paths in the report are the records' own order within each trace.
    for request in report["requests_detail"]:
        recorded = list(
            CallRecord.objects.filter(trace_id=request["trace_id"])
            .order_by("created_at", "id")
            .values_list("model_name", flat=True)
        )
        assert recorded == [p["model"] for p in request["path"]]


def test_a_chain_with_every_model_down_reports_the_failures(seed_default_chain):
    faults = [FaultInput(m, "server_error", 1.0) for m in ("gpt-4o", "claude-3.5-sonnet", "gpt-4o-mini")]
    drill = run_drill(target_kind="chain", target="default", faults=faults, requests=3, concurrency=1)
    assert drill.report["success_rate"] == 0.0
    assert drill.report["served_by"] == {}
    assert all(r["error"] for r in drill.report["requests_detail"])


def drill_with_gpt4o_down(settings):
    """Six sequential requests over the default chain, gpt-4o failing; its breaker opens at 3."""
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "BREAKER_FAILURES": 3, "RETRY_MAX": 0}
    return run_drill(
        target_kind="chain",
        target="default",
        faults=[FaultInput("gpt-4o", "server_error", 1.0)],
        requests=6,
        concurrency=1,
    )


def test_breaker_openings_are_reported(seed_default_chain, settings):
    drill = drill_with_gpt4o_down(settings)
    opened = [o["model"] for o in drill.report["breakers"]["opened"]]
    assert opened == ["gpt-4o"]
    assert drill.report["success_rate"] == 1.0


def test_a_drill_never_opens_a_circuit_for_live_traffic(seed_default_chain, settings):
    from routing.engine.breaker import breaker_states

    drill = drill_with_gpt4o_down(settings)
    assert [o["model"] for o in drill.report["breakers"]["opened"]] == ["gpt-4o"]
    assert breaker_states().get("gpt-4o", {}).get("state", "closed") == "closed"
    # The drill's own namespace is cleared once its report is saved.
    assert breaker_states(scope=f"drill-{drill.pk}") == {}


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"target": "nope"}, "Unknown fallback chain 'nope'"),
        ({"faults": [FaultInput("ghost", "server_error", 1.0)]}, "Unknown model 'ghost'"),
        ({"faults": [FaultInput("gpt-4o", "meltdown", 1.0)]}, "unknown fault 'meltdown'"),
        ({"faults": [FaultInput("gpt-4o", "timeout", 1.5)]}, "rate must be above 0 and at most 1"),
        ({"faults": []}, "Mark at least one model"),
        ({"requests": 0}, "Requests must be between 1 and"),
    ],
)
def test_bad_drill_input_is_refused(seed_default_chain, kwargs, message):
    params = {
        "target_kind": "chain",
        "target": "default",
        "faults": [FaultInput("gpt-4o", "server_error", 1.0)],
        "requests": 2,
        **kwargs,
    }
    with pytest.raises(DrillInputError, match=message):
        drill_create(user=None, **params)
    assert Drill.objects.count() == 0


def test_fault_specs_parse_from_the_command_line_form():
    assert fault_parse("gpt-4o:server_error:0.5") == FaultInput("gpt-4o", "server_error", 0.5)
    assert fault_parse("gpt-4o:timeout") == FaultInput("gpt-4o", "timeout", 1.0)
    assert fault_parse("ollama/llama3:8b:rate_limit:1") == FaultInput("ollama/llama3:8b", "rate_limit", 1.0)
    with pytest.raises(DrillInputError, match="MODEL:KIND"):
        fault_parse("gpt-4o")


class TestCommand:
    def test_it_prints_the_report_as_json_and_saves_the_drill(self, seed_default_chain):
        out = StringIO()
        call_command(
            "drill",
            "--chain",
            "default",
            "--fail",
            "gpt-4o:server_error:1.0",
            "--requests",
            "5",
            "--json",
            stdout=out,
        )
        report = json.loads(out.getvalue())
        assert report["success_rate"] == 1.0 and report["served_by"] == {"claude-3.5-sonnet": 5}
        drill = Drill.objects.get(pk=report["drill_id"])
        assert drill.origin == "cli" and drill.status == "done"

    def test_it_prints_a_readable_summary(self, seed_default_chain):
        out = StringIO()
        call_command(
            "drill", "--chain", "default", "--fail", "gpt-4o:rate_limit", "--requests", "2", stdout=out
        )
        text = out.getvalue()
        assert "2/2 requests answered (100.0%)" in text and "claude-3.5-sonnet 2" in text

    def test_it_exits_non_zero_below_the_minimum_success_rate(self, seed_default_chain):
        fails = ["--fail", "gpt-4o:server_error", "--fail", "claude-3.5-sonnet:server_error"]
        fails += ["--fail", "gpt-4o-mini:server_error:1"]
        with pytest.raises(CommandError, match=r"Success rate 0.0% is below --min-success 90.0%") as info:
            call_command("drill", "--chain", "default", *fails, "--requests", "2", "--min-success", "0.9")
        assert info.value.returncode == 1

    def test_it_rejects_an_unknown_model(self, seed_default_chain):
        with pytest.raises(CommandError, match="Unknown model 'ghost'"):
            call_command("drill", "--chain", "default", "--fail", "ghost:server_error", "--requests", "2")
        assert Drill.objects.count() == 0


def test_a_stream_cut_after_the_first_token_ends_the_request_with_an_error(seed_default_chain):
    drill = run_drill(
        target_kind="chain",
        target="default",
        faults=[FaultInput("gpt-4o", "stream_cut", 1.0)],
        requests=3,
        concurrency=1,
        stream=True,
    )
    report = drill.report
    # Text had reached the caller, so the engine cannot move on: each request fails on gpt-4o.
    assert report["success_rate"] == 0.0
    for request in report["requests_detail"]:
        assert request["error"]
    records = CallRecord.objects.filter(trace_id__in=[r["trace_id"] for r in report["requests_detail"]])
    assert set(records.values_list("model_name", "status")) == {("gpt-4o", "error")}


def test_a_route_drill_follows_the_routes_chain(seed_default_chain):
    from tests.factories import TaskRouteFactory

    first = seed_default_chain.steps.get(position=0).model
    TaskRouteFactory(task_type="summarize", model=first, fallback_chain=seed_default_chain)
    drill = run_drill(
        target_kind="route",
        target="summarize",
        faults=[FaultInput("gpt-4o", "timeout", 1.0)],
        requests=2,
        concurrency=2,
    )
    assert drill.report["success_rate"] == 1.0
    assert drill.report["served_by"] == {"claude-3.5-sonnet": 2}


def test_faulting_a_model_outside_the_chain_is_refused(seed_default_chain):
    from tests.compare.conftest import simulated_model

    simulated_model("outsider")
    with pytest.raises(
        DrillInputError, match=r"outsider is not in chain default \(gpt-4o → claude-3.5-sonnet"
    ):
        drill_create(
            user=None,
            target_kind="chain",
            target="default",
            faults=[FaultInput("outsider", "server_error", 1.0)],
            requests=2,
        )


def test_a_baseline_run_measures_what_the_faults_added(seed_default_chain):
    drill = run_drill(
        target_kind="chain",
        target="default",
        faults=[FaultInput("gpt-4o", "timeout", 1.0)],
        requests=4,
        concurrency=2,
        baseline=True,
    )
    base = drill.report["baseline"]
    assert base["requests"] == 4 and base["ok"] == 4
    # Without faults gpt-4o answers; with them, claude does.
    baseline_served = set(
        CallRecord.objects.filter(trace_id__in=base["trace_ids"], status="ok").values_list(
            "model_name", flat=True
        )
    )
    assert baseline_served == {"gpt-4o"}
    assert drill.report["served_by"] == {"claude-3.5-sonnet": 4}
    drilled_p50 = drill.report["latency_ms"]["p50"]
    assert base["added_ms"]["p50"] == drilled_p50 - base["latency_ms"]["p50"]

    out = StringIO()
    call_command(
        "drill", "--chain", "default", "--fail", "gpt-4o:timeout", "--requests", "2", "--baseline", stdout=out
    )
    assert "Without faults: p50" in out.getvalue()
