from datetime import timedelta

import pytest
from django.http import QueryDict

from dashboards.panels import filter_choices
from metrics.charts import dashboard_charts, money_axis
from metrics.filters import parse_query
from metrics.models import CallRecord
from metrics.rollups import rollup_run
from metrics.selectors.dashboard import dashboard_figures
from tests.metrics.conftest import exact_percentile, make_records

pytestmark = pytest.mark.django_db


@pytest.fixture
def figures_week(config, now):
    make_records(300, start=now - timedelta(days=6), span=timedelta(days=6), seed=9)
    rollup_run()
    return dashboard_figures(q=parse_query(QueryDict("range=7d&source=all"), choices=filter_choices()))


@pytest.mark.parametrize("percentile", [50, 95, 99])
def test_the_latency_chart_draws_one_line_per_model_at_the_chosen_percentile(figures_week, percentile):
    latency = dashboard_charts(figures_week, percentile=percentile)["latency"]
    assert [t["name"] for t in latency["data"]] == figures_week.models
    assert latency["layout"]["title"]["text"] == f"Latency p{percentile} by model"
    for trace in latency["data"]:
        drawn = [v for v in trace["y"] if v is not None]
        assert drawn
        assert drawn == [
            c.percentiles(percentile)[0]
            for b in figures_week.buckets
            if (c := figures_week.series.get((b, trace["name"]))) and c.latency_count
        ]


def test_a_percentile_line_is_within_the_histogram_bound_of_the_exact_value(figures_week):
    trace = next(t for t in dashboard_charts(figures_week, percentile=99)["latency"]["data"])
    values = [r.latency_ms for r in CallRecord.objects.filter(model_name=trace["name"]) if r.latency_ms]
    overall = figures_week.by_model[trace["name"]].percentiles(99)[0]
    assert abs(overall - exact_percentile(values, 99)) / exact_percentile(values, 99) <= 0.05


def test_the_cost_axis_is_in_dollars(figures_week):
    axis = dashboard_charts(figures_week)["cost"]["layout"]["yaxis"]
    assert axis["tickprefix"] == "$"
    assert axis["tickformat"].endswith("~f")  # fixed decimals, not SI prefixes like "100µ"


@pytest.mark.parametrize(
    ("peak", "decimals"), [(0.0, 2), (250.0, 2), (1.2, 2), (0.04, 3), (0.0004, 5), (3e-9, 10)]
)
def test_money_ticks_have_enough_decimals_for_the_peak(peak, decimals):
    assert money_axis(peak)["tickformat"] == f",.{decimals}~f"
