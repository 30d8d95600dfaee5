from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.http import QueryDict

from dashboards.panels import filter_choices
from metrics.charts import dashboard_charts
from metrics.filters import parse_query
from metrics.histogram import RELATIVE_ERROR_BOUND
from metrics.models import CallRecord, CallStatus
from metrics.rollups import rollup_run
from metrics.selectors.dashboard import dashboard_figures, segments
from tests.factories import CallRecordFactory
from tests.metrics.conftest import exact_percentile, make_records

pytestmark = pytest.mark.django_db


# --- the figures -------------------------------------------------------------------------


def test_the_30_day_figures_equal_raw_rows_plus_the_live_tail(traffic, now):
    # Written after the rollup ran: read live from raw rows.
    CallRecordFactory(model_name="alpha", status=CallStatus.ERROR, cost_usd=Decimal("0.25"), created_at=now)
    data = dashboard_figures(q=parse_query(QueryDict("range=30d&source=all"), choices=filter_choices()))
    raw = list(CallRecord.objects.all())
    assert data.totals.count == len(raw)
    assert data.totals.cost == sum((r.cost_usd or 0 for r in raw), Decimal(0))
    assert data.totals.errors == sum(r.status in (CallStatus.ERROR, CallStatus.TIMEOUT) for r in raw)
    for model, b in data.by_model.items():
        lat = [r.latency_ms for r in raw if r.model_name == model and r.latency_ms is not None]
        assert abs(b.percentiles(95)[0] - exact_percentile(lat, 95)) / exact_percentile(lat, 95) <= (
            RELATIVE_ERROR_BOUND + 1e-9
        )


def test_filters_apply_to_rollups_and_tail_alike(traffic, now):
    CallRecordFactory(model_name="beta", created_at=now)
    data = dashboard_figures(
        q=parse_query(QueryDict("range=30d&model=beta&source=all"), choices=filter_choices())
    )
    assert set(data.by_model) == {"beta"}
    assert data.totals.count == CallRecord.objects.filter(model_name="beta").count()


def test_a_route_filter_reads_the_full_rollup_and_matches_raw_rows(traffic, now):
    data = dashboard_figures(
        q=parse_query(QueryDict("range=30d&route=summarize&source=all"), choices=filter_choices())
    )
    raw = list(CallRecord.objects.filter(task_type="summarize"))
    assert data.totals.count == len(raw)
    assert data.totals.cost == sum((r.cost_usd or 0 for r in raw), Decimal(0))
    assert set(data.breakdowns["route"]) == {"summarize"}


def test_breakdowns_without_filters_match_raw_rows(traffic):
    data = dashboard_figures(q=parse_query(QueryDict("range=30d&source=all"), choices=filter_choices()))
    for route, b in data.breakdowns["route"].items():
        raw = CallRecord.objects.filter(task_type=route)
        assert b.count == raw.count()
        assert b.errors == raw.filter(status__in=[CallStatus.ERROR, CallStatus.TIMEOUT]).count()


@pytest.mark.parametrize("window", ["7d", "24h", "1h"])
def test_window_sums_read_from_coarser_rows_match_raw_rows(config, now, window):
    make_records(900, start=now - timedelta(days=14), span=timedelta(days=14), seed=21)
    make_records(300, start=now - timedelta(hours=3), span=timedelta(hours=3), seed=22)
    rollup_run()
    q = parse_query(QueryDict(f"range={window}&source=all"), choices=filter_choices())
    data = dashboard_figures(q=q)
    current = CallRecord.objects.filter(created_at__gte=q.start, created_at__lt=q.end)
    before = CallRecord.objects.filter(created_at__gte=q.previous[0], created_at__lt=q.previous[1])
    for route, b in data.breakdowns["route"].items():
        assert b.count == current.filter(task_type=route).count()
    assert sum(b.count for b in data.breakdowns["source"].values()) == current.count()
    assert data.totals.count == current.count()
    assert data.previous.count == before.count()
    assert data.previous.cost == sum((r.cost_usd or 0 for r in before), Decimal(0))


def test_segments_use_whole_days_inside_and_hours_at_the_edges():
    start, end = datetime(2026, 3, 1, 5, tzinfo=UTC), datetime(2026, 3, 4, 7, 30, tzinfo=UTC)
    assert segments("hour", start, end) == [
        ("hour", start, datetime(2026, 3, 2, tzinfo=UTC)),
        ("day", datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)),
        ("hour", datetime(2026, 3, 4, tzinfo=UTC), end),
    ]
    assert segments("hour", start, start + timedelta(hours=5)) == [
        ("hour", start, start + timedelta(hours=5))
    ]
    assert segments("day", start, end) == [("day", start, end)]


def test_the_previous_window_is_compared(config, now):
    CallRecordFactory(model_name="alpha", created_at=now - timedelta(hours=30), cost_usd=Decimal("1"))
    CallRecordFactory(model_name="alpha", created_at=now - timedelta(hours=2), cost_usd=Decimal("3"))
    rollup_run()
    data = dashboard_figures(q=parse_query(QueryDict("range=24h&source=all"), choices=filter_choices()))
    assert (data.totals.cost, data.previous.cost) == (Decimal("3"), Decimal("1"))


def test_stale_rollups_are_stated_and_the_tail_stays_bounded(config, now):
    CallRecordFactory(model_name="alpha", created_at=now - timedelta(hours=3))
    CallRecordFactory(model_name="alpha", created_at=now - timedelta(minutes=1))
    data = dashboard_figures(q=parse_query(QueryDict("range=24h&source=all"), choices=filter_choices()))
    assert data.totals.count == 1
    assert "have not run yet" in data.notes[0]


def test_chain_steps_that_served_are_counted(config, now):
    for step, status in ((0, CallStatus.OK), (0, CallStatus.ERROR), (1, CallStatus.OK), (1, CallStatus.OK)):
        CallRecordFactory(
            chain_name="default", chain_step=step, status=status, created_at=now - timedelta(hours=1)
        )
    rollup_run()
    data = dashboard_figures(q=parse_query(QueryDict("range=24h&source=all"), choices=filter_choices()))
    assert data.chains == {("default", 0, "model-a"): 1, ("default", 1, "model-a"): 2}


def test_latency_from_a_single_busy_hour_is_drawn_not_left_blank(config, now):
    CallRecordFactory(model_name="alpha", latency_ms=240, ttft_ms=80, stream=True, created_at=now)

    data = dashboard_figures(q=parse_query(QueryDict("range=24h&source=all"), choices=filter_choices()))
    figures = dashboard_charts(data)

    for name in ("latency", "ttft"):
        drawn = [t for t in figures[name]["data"] if any(v is not None for v in t["y"])]
        assert drawn, name
        assert all("markers" in t["mode"] for t in drawn), name


def _by_source(now, *, rolled_up: dict[str, int], live_tail: dict[str, int]) -> None:
    for source, n in rolled_up.items():
        CallRecordFactory.create_batch(
            n, source=source, status=CallStatus.ERROR, created_at=now - timedelta(hours=2)
        )
    rollup_run()
    for source, n in live_tail.items():
        CallRecordFactory.create_batch(n, source=source, created_at=now)


def test_the_default_view_shows_live_traffic_and_counts_what_it_leaves_out(config, now):
    _by_source(
        now,
        rolled_up={"drill": 20, "api": 3, "batch": 4},
        live_tail={"gateway": 2, "simulation": 5, "playground": 1, "drill": 1},
    )
    data = dashboard_figures(q=parse_query(QueryDict("range=24h"), choices=filter_choices()))
    assert data.totals.count == 6
    assert data.totals.errors == 3  # the drill's 20 errors are not live traffic
    assert set(data.breakdowns["source"]) == {"api", "gateway", "playground"}
    assert data.hidden == {"drill": 21, "batch": 4, "simulation": 5}


@pytest.mark.parametrize("source", ["drill", "test", "all", "gateway"])
def test_a_source_filter_reads_rollups_and_the_live_tail_alike(config, now, source):
    _by_source(now, rolled_up={"drill": 7, "api": 3, "batch": 2}, live_tail={"gateway": 2, "drill": 1})
    data = dashboard_figures(q=parse_query(QueryDict(f"range=24h&source={source}"), choices=filter_choices()))
    wanted = {"drill": ["drill"], "test": ["drill", "batch", "simulation"], "gateway": ["gateway"]}.get(
        source
    )
    raw = CallRecord.objects.all() if wanted is None else CallRecord.objects.filter(source__in=wanted)
    assert data.totals.count == raw.count()
    assert sum(b.count for b in data.series.values()) == raw.count()
    assert data.hidden == {}


def test_the_source_migration_derives_the_per_model_rollup_exactly(config, now):
    from importlib import import_module

    from django.apps import apps

    from metrics.models import CallRollupByModel

    make_records(400, start=now - timedelta(days=3), span=timedelta(days=3), seed=5)
    rollup_run()
    fields = [f.name for f in CallRollupByModel._meta.fields if f.name != "id"]

    def rows():
        # Float sums may differ in the last bits with the order of addition: compare them rounded.
        return sorted(
            tuple(
                bytes(v) if isinstance(v, memoryview) else round(v, 6) if isinstance(v, float) else v
                for v in row
            )
            for row in CallRollupByModel.objects.values_list(*fields)
        )

    written = rows()
    CallRollupByModel.objects.update(count=0)  # spoil them: the migration must rebuild every row
    import_module("metrics.migrations.0004_rollup_by_model_source").by_model_from_full_rollup(apps, None)
    assert rows() == written
    assert {r[fields.index("source")] for r in written} == {"simulation", "api", "gateway"}
