from datetime import UTC, datetime, timedelta

from django.http import QueryDict

from metrics.filters import MAX_SPAN, FilterChoices, parse_query

NOW = datetime(2026, 6, 10, 12, 34, 56, tzinfo=UTC)
CHOICES = FilterChoices(models=["alpha", "beta"], providers=["p"], routes=["summarize"], keys=[(7, "ci")])


def q(query: str, **kw):
    return parse_query(QueryDict(query), choices=CHOICES, now=NOW, **kw)


def test_presets_pick_a_fitting_granularity():
    assert (q("range=1h").grain, q("range=24h").grain, q("range=7d").grain, q("range=30d").grain) == (
        "minute",
        "hour",
        "hour",
        "day",
    )


def test_the_window_starts_on_a_bucket_edge_and_ends_now():
    query = q("range=24h")
    assert query.start == datetime(2026, 6, 9, 12, 0, tzinfo=UTC)
    assert query.end == NOW
    # 24 h 34 m 56 s before the start, rounded to the nearest hour.
    assert query.previous == (datetime(2026, 6, 8, 11, 0, tzinfo=UTC), query.start)


def test_no_range_means_the_last_24_hours_without_a_note():
    query = q("")
    assert (query.preset, query.notes) == ("24h", [])


def test_an_unknown_range_falls_back_with_a_note():
    query = q("range=forever")
    assert query.preset == "24h"
    assert "Unknown range" in query.notes[0]


def test_a_reversed_custom_range_is_swapped():
    query = q("range=custom&from=2026-06-05T00:00&to=2026-06-01T00:00")
    assert query.start == datetime(2026, 6, 1, tzinfo=UTC)
    assert query.end == datetime(2026, 6, 5, tzinfo=UTC)
    assert any("swapped" in n for n in query.notes)


def test_a_malformed_date_is_reported_not_raised():
    query = q("range=custom&from=yesterday-ish&to=2026-06-10T00:00")
    assert any("Could not read the start" in n for n in query.notes)
    assert query.end == datetime(2026, 6, 10, tzinfo=UTC)


def test_an_end_in_the_future_is_clamped_to_now():
    assert q("range=custom&from=2026-06-10T00:00&to=2099-01-01T00:00").end == NOW


def test_ten_years_at_minute_granularity_is_clamped_and_says_so():
    query = q("range=custom&from=2016-06-01&to=2026-06-01&grain=minute")
    assert query.span <= MAX_SPAN + timedelta(days=1)
    assert query.grain == "day"
    assert any("limited to 400 days" in n for n in query.notes)
    assert any("showing day instead" in n for n in query.notes)


def test_minute_detail_older_than_the_retention_falls_back_to_hours():
    query = q("range=custom&from=2026-05-01T10:00&to=2026-05-01T11:00")
    assert query.grain == "hour"
    assert any("Minute detail is kept" in n for n in query.notes)


def test_unknown_filter_values_are_dropped_with_a_note():
    query = q("model=alpha&provider=nope&key=abc&status=weird&route=summarize")
    assert query.filters == {"model": "alpha", "route": "summarize", "source": "live"}
    assert len(query.notes) == 3
    assert query.lookups() == {
        "model_name": "alpha",
        "task_type": "summarize",
        "source__in": ("gateway", "api", "playground"),
    }


def test_key_filter_is_an_id():
    assert q("key=7&source=all").lookups() == {"api_key_id": 7}
    assert q("key=7").lookups() == {"api_key_id": 7, "source__in": ("gateway", "api", "playground")}


def test_the_query_string_keeps_only_clean_values():
    query = q("range=7d&model=alpha&provider=<script>")
    assert query.query_string() == "range=7d&model=alpha&source=live"


def test_naive_custom_times_are_read_in_the_configured_zone(settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    query = q("range=custom&from=2026-06-10T09:00&to=2026-06-10T10:00")
    assert query.start == datetime(2026, 6, 10, 0, 0, tzinfo=UTC)
