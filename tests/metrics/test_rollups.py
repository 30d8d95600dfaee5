from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from metrics.histogram import RELATIVE_ERROR_BOUND, hist_decode, hist_merge, hist_percentiles
from metrics.models import CallRecord, CallRollup, CallStatus, RollupGrain, RollupState
from metrics.rollups import floor_day, next_day, rollup_reset, rollup_run
from tests.factories import CallRecordFactory
from tests.metrics.conftest import exact_percentile, make_records

pytestmark = pytest.mark.django_db

ERRORS = {CallStatus.ERROR, CallStatus.TIMEOUT}


def _raw_by_model():
    out = defaultdict(lambda: {"count": 0, "errors": 0, "cost": Decimal(0), "unknown": 0, "lat": [], "in": 0})
    for r in CallRecord.objects.all():
        m = out[r.model_name]
        m["count"] += 1
        m["errors"] += r.status in ERRORS
        m["cost"] += r.cost_usd or 0
        m["unknown"] += r.cost_usd is None
        m["in"] += r.input_tokens
        if r.latency_ms is not None:
            m["lat"].append(r.latency_ms)
    return out


def _rollup_by_model(grain):
    out = defaultdict(
        lambda: {"count": 0, "errors": 0, "cost": Decimal(0), "unknown": 0, "hist": {}, "in": 0}
    )
    for r in CallRollup.objects.filter(grain=grain):
        m = out[r.model_name]
        m["count"] += r.count
        m["errors"] += r.count if r.status in ERRORS else 0
        m["cost"] += r.cost_usd
        m["unknown"] += r.cost_unknown
        m["in"] += r.input_tokens
        hist_merge(m["hist"], hist_decode(r.latency_hist))
    return out


@pytest.mark.parametrize("grain", [RollupGrain.MINUTE, RollupGrain.HOUR, RollupGrain.DAY])
def test_rollup_figures_equal_the_same_figures_from_raw_rows(grain, now):
    make_records(1500, start=now - timedelta(hours=40), span=timedelta(hours=39))
    assert rollup_run().ran
    raw, rolled = _raw_by_model(), _rollup_by_model(grain)
    assert set(raw) == set(rolled)
    for model, exact in raw.items():
        got = rolled[model]
        assert got["count"] == exact["count"]
        assert got["errors"] == exact["errors"]
        assert got["cost"] == exact["cost"]
        assert got["unknown"] == exact["unknown"]
        assert got["in"] == exact["in"]
        for p in (50, 95, 99):
            estimate = hist_percentiles(got["hist"], [p])[0]
            truth = exact_percentile(exact["lat"], p)
            assert abs(estimate - truth) / truth <= RELATIVE_ERROR_BOUND + 1e-9


def _snapshot():
    return sorted(
        (
            r.grain,
            r.bucket,
            r.model_name,
            r.task_type,
            r.status,
            r.source,
            r.chain_step,
            r.count,
            r.cost_usd,
            bytes(r.latency_hist),
        )
        for r in CallRollup.objects.all()
    )


def test_rerunning_and_rebuilding_give_the_same_rows(now):
    make_records(400, start=now - timedelta(days=3), span=timedelta(days=3) - timedelta(minutes=5))
    rollup_run()
    first = _snapshot()
    rollup_run()
    assert _snapshot() == first
    rollup_reset()
    assert not CallRollup.objects.exists()
    rollup_run()
    # Minute rows older than the retention window are not rebuilt; hours and days match exactly.
    assert [s for s in _snapshot() if s[0] != "minute"] == [s for s in first if s[0] != "minute"]


def test_a_backdated_record_written_after_a_run_is_picked_up_by_the_next(now):
    make_records(50, start=now - timedelta(days=2), span=timedelta(hours=5))
    rollup_run()
    old = now - timedelta(days=10)
    CallRecordFactory(model_name="late", created_at=old, cost_usd=Decimal("0.5"))
    rollup_run()
    day = CallRollup.objects.get(grain=RollupGrain.DAY, model_name="late")
    assert (day.count, day.cost_usd) == (1, Decimal("0.5"))
    assert day.bucket == floor_day(old)


def test_rollups_hold_only_records_created_before_the_cut_off(now):
    CallRecordFactory(created_at=now - timedelta(minutes=2))
    CallRecordFactory(created_at=now + timedelta(seconds=30))  # a clock ahead of ours
    rollup_run(now=now)
    assert sum(CallRollup.objects.filter(grain=RollupGrain.HOUR).values_list("count", flat=True)) == 1
    assert RollupState.objects.get(pk=1).covered_until == now
    rollup_run(now=now + timedelta(minutes=1))
    assert sum(CallRollup.objects.filter(grain=RollupGrain.HOUR).values_list("count", flat=True)) == 2


def test_a_second_worker_does_not_run_while_the_first_holds_the_lease(now):
    CallRecordFactory(created_at=now - timedelta(minutes=3))
    RollupState.objects.create(pk=1, locked_until=timezone.now() + timedelta(minutes=1), locked_by="other")
    assert rollup_run().ran is False
    assert not CallRollup.objects.exists()
    RollupState.objects.filter(pk=1).update(locked_until=timezone.now() - timedelta(seconds=1))
    assert rollup_run().ran is True
    assert RollupState.objects.get(pk=1).locked_by == ""


def test_a_record_on_an_hour_edge_belongs_to_the_hour_it_starts(now):
    edge = (now - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    CallRecordFactory(model_name="before", created_at=edge - timedelta(microseconds=1))
    CallRecordFactory(model_name="on", created_at=edge)
    rollup_run()
    hours = dict(CallRollup.objects.filter(grain=RollupGrain.HOUR).values_list("model_name", "bucket"))
    assert hours == {"before": edge - timedelta(hours=1), "on": edge}
    minutes = dict(CallRollup.objects.filter(grain=RollupGrain.MINUTE).values_list("model_name", "bucket"))
    assert minutes == {"before": edge - timedelta(minutes=1), "on": edge}


def test_days_start_at_local_midnight_of_the_configured_time_zone(settings):
    settings.TIME_ZONE = "America/New_York"
    # 2026-01-15 05:00 UTC is local midnight in New York (UTC-5 in winter).
    midnight = datetime(2026, 1, 15, 5, 0, tzinfo=UTC)
    CallRecordFactory(model_name="late-evening", created_at=midnight - timedelta(seconds=1))
    CallRecordFactory(model_name="just-after", created_at=midnight)
    rollup_run()
    days = dict(CallRollup.objects.filter(grain=RollupGrain.DAY).values_list("model_name", "bucket"))
    assert days == {"late-evening": midnight - timedelta(days=1), "just-after": midnight}


def test_a_daylight_saving_day_has_twenty_three_hours(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    day = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # local midnight, 29 March 2026 (clocks go forward)
    assert floor_day(day + timedelta(hours=5)) == day
    assert next_day(day) - day == timedelta(hours=23)
    CallRecordFactory(model_name="last-hour", created_at=day + timedelta(hours=22, minutes=30))
    rollup_run()
    assert CallRollup.objects.get(grain=RollupGrain.DAY, model_name="last-hour").bucket == day


def test_minute_rows_are_kept_only_for_recent_hours(now):
    CallRecordFactory(model_name="old", created_at=now - timedelta(days=5))
    CallRecordFactory(model_name="new", created_at=now - timedelta(minutes=10))
    rollup_run()
    assert set(CallRollup.objects.filter(grain=RollupGrain.MINUTE).values_list("model_name", flat=True)) == {
        "new"
    }
    assert CallRollup.objects.filter(grain=RollupGrain.HOUR, model_name="old").exists()


def test_the_celery_task_runs_the_rollup(now):
    from metrics.tasks import rollup_calls

    CallRecordFactory(created_at=now - timedelta(minutes=1))
    assert rollup_calls.apply().get()["ran"] is True
    assert CallRollup.objects.filter(grain=RollupGrain.HOUR).count() == 1


def test_empty_ids_and_missing_steps_become_one_row_per_combination(now):
    CallRecordFactory(created_at=now - timedelta(minutes=5), chain_step=None)
    CallRecordFactory(created_at=now - timedelta(minutes=5), chain_step=None)
    rollup_run()
    row = CallRollup.objects.get(grain=RollupGrain.HOUR)
    assert (row.count, row.api_key_id, row.prompt_version_id, row.chain_step) == (2, 0, 0, -1)


@pytest.mark.parametrize("grain", [RollupGrain.MINUTE, RollupGrain.HOUR, RollupGrain.DAY])
def test_the_per_model_rollup_matches_the_full_one(grain, now):
    from metrics.models import CallRollupByModel

    make_records(800, start=now - timedelta(hours=30), span=timedelta(hours=29), seed=11)
    rollup_run()
    full = defaultdict(lambda: [0, Decimal(0), 0, {}])
    for r in CallRollup.objects.filter(grain=grain):
        f = full[(r.bucket, r.model_name, r.source, r.status)]
        f[0] += r.count
        f[1] += r.cost_usd
        f[2] += r.input_tokens
        hist_merge(f[3], hist_decode(r.latency_hist))
    per_model = {
        (m.bucket, m.model_name, m.source, m.status): [
            m.count,
            m.cost_usd,
            m.input_tokens,
            hist_decode(m.latency_hist),
        ]
        for m in CallRollupByModel.objects.filter(grain=grain)
    }
    assert per_model == {k: list(v) for k, v in full.items()}


def test_beat_runs_the_rollup_every_minute_on_the_periodic_queue(settings):
    entry = next(
        e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "metrics.tasks.rollup_calls"
    )
    assert entry["schedule"] == 60.0
    from orchestrator_site.celery import app

    assert app.amqp.router.route({}, "metrics.tasks.rollup_calls")["queue"].name == "periodic"
