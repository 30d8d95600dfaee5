import csv
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest

from metrics.models import CallRecord, CallStatus
from metrics.rollups import rollup_run
from tests.factories import CallRecordFactory, ModelConfigFactory
from tests.metrics.conftest import make_records

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


# --- /dashboard/ -------------------------------------------------------------------------


def test_dashboard_refuses_anonymous_users(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_dashboard_rejects_post(member_client):
    assert member_client.post("/dashboard/").status_code == 405


def test_dashboard_shows_what_to_do_when_there_are_no_calls(member_client):
    response = member_client.get("/dashboard/")
    assert response.status_code == 200
    assert b"simulate_traffic" in response.content
    assert b"playground" in response.content
    assert b'class="notes"' not in response.content  # nothing is missing, so nothing to warn about


def test_dashboard_renders_tiles_charts_and_tables(member_client, traffic, django_assert_max_num_queries):
    with django_assert_max_num_queries(19):
        response = member_client.get("/dashboard/?range=30d")
    body = response.content.decode()
    assert response.status_code == 200
    for fig in ("fig-cost", "fig-requests", "fig-latency", "fig-errors", "fig-tokens", "fig-ttft"):
        assert f'id="{fig}"' in body
    assert "plotly/plotly.min.js" in body
    assert "By route" in body and "By source" in body and "Fallback chains" in body
    assert "<html" in body


def test_dashboard_query_count_does_not_grow_with_records(
    member_client, config, now, django_assert_max_num_queries
):
    make_records(2000, start=now - timedelta(days=6), span=timedelta(days=6), seed=3)
    rollup_run()
    with django_assert_max_num_queries(19):
        assert member_client.get("/dashboard/?range=7d").status_code == 200


def test_htmx_gets_only_the_panel(member_client, traffic):
    response = member_client.get("/dashboard/?range=7d&model=alpha", **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and "<form" in body and "fig-cost" in body


def test_a_history_restore_gets_the_full_page(member_client, traffic):
    response = member_client.get("/dashboard/?range=7d", HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX)
    assert "<html" in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        "range=custom&from=2030-01-01&to=1999-01-01",
        "range=custom&from=not-a-date&to=%00",
        "range=custom&from=0001-01-01&to=9999-12-31&grain=minute",
        "range=1h&grain=fortnight&model=<b>x</b>&key=-1&status=???",
        "export=nope",
        "range=custom&from=2026-01-01T00:00%2B14:00&to=garbage",
    ],
)
def test_bad_filters_get_a_message_never_a_500(member_client, traffic, query):
    response = member_client.get(f"/dashboard/?{query}")
    assert response.status_code == 200
    assert b'class="notes"' in response.content
    assert b"<b>x</b>" not in response.content


def test_unknown_price_models_link_to_their_admin_page(staff_client, config, now):
    model = ModelConfigFactory(name="alpha")
    CallRecordFactory(
        model_name="alpha", cost_usd=None, price_source="unknown", created_at=now - timedelta(hours=1)
    )
    rollup_run()
    response = staff_client.get("/dashboard/")
    assert f"/admin/routing/modelconfig/{model.pk}/change/" in response.content.decode()


def test_tables_export_as_csv(member_client, traffic):
    response = member_client.get("/dashboard/?range=30d&export=models&source=all")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["model", "calls", "cost_usd"]
    assert sum(int(r[1]) for r in rows[1:]) == CallRecord.objects.count()
    route = member_client.get("/dashboard/?range=30d&export=route")
    assert "summarize" in route.content.decode()


# --- /calls/ -----------------------------------------------------------------------------


def test_call_log_refuses_anonymous_users(client):
    assert client.get("/calls/").status_code == 302
    assert client.get("/calls/1/").status_code == 302


def test_call_log_rejects_post(member_client):
    assert member_client.post("/calls/").status_code == 405


def test_call_log_says_what_to_do_when_empty(member_client):
    assert b"simulate_traffic" in member_client.get("/calls/").content


def _walk(client, url):
    seen, pages = [], 0
    while url and pages < 50:
        response = client.get(url)
        assert response.status_code == 200
        page = response.context["page"]
        seen += [c.id for c in page.calls]
        url = f"/calls/?{response.context['q'].query_string(before=page.older)}" if page.older else None
        pages += 1
    return seen


def test_keyset_pages_walk_every_call_newest_first_once(member_client, config, now):
    make_records(130, start=now - timedelta(hours=2), span=timedelta(hours=1))
    same_instant = now - timedelta(minutes=30)
    CallRecordFactory.create_batch(60, created_at=same_instant)  # ties on created_at span pages
    seen = _walk(member_client, "/calls/")
    expected = list(CallRecord.objects.order_by("-created_at", "-id").values_list("id", flat=True))
    assert seen == expected


def test_the_newer_link_goes_back_a_page(member_client, config, now):
    make_records(120, start=now - timedelta(hours=2), span=timedelta(hours=1))
    first = member_client.get("/calls/").context["page"]
    second = member_client.get(f"/calls/?before={first.older}").context["page"]
    back = member_client.get(f"/calls/?after={second.newer}").context["page"]
    assert [c.id for c in back.calls] == [c.id for c in first.calls]


def test_call_log_filters_and_pins_queries(member_client, config, now, django_assert_max_num_queries):
    make_records(300, start=now - timedelta(hours=2), span=timedelta(hours=1))
    with django_assert_max_num_queries(9):
        response = member_client.get("/calls/?model=beta&status=ok")
    calls = response.context["page"].calls
    assert calls and all(c.model_name == "beta" and c.status == "ok" for c in calls)


def test_call_log_htmx_gets_only_the_panel(member_client, config, now):
    CallRecordFactory(created_at=now)
    body = member_client.get("/calls/", **HTMX).content.decode()
    assert "<html" not in body and "<table" in body


def test_a_broken_page_cursor_is_reported(member_client, config, now):
    CallRecordFactory(created_at=now)
    response = member_client.get("/calls/?before=garbage&after=")
    assert response.status_code == 200
    assert b"page link is broken" in response.content


def test_a_call_shows_its_trace_text_and_cost_arithmetic(member_client, now):
    first = CallRecordFactory(
        trace_id="abc",
        model_name="alpha",
        status=CallStatus.ERROR,
        error_class="transient",
        error_message="HTTP 429",
        chain_name="default",
        chain_step=0,
        created_at=now - timedelta(seconds=2),
    )
    second = CallRecordFactory(
        trace_id="abc",
        model_name="beta",
        chain_name="default",
        chain_step=1,
        attempt=1,
        request_text="<script>alert(1)</script>",
        response_text="**hi** <img src=x onerror=alert(1)>",
        input_tokens=1000,
        output_tokens=500,
        input_price_per_1k=Decimal("0.002"),
        output_price_per_1k=Decimal("0.01"),
        cost_usd=Decimal("0.007"),
        price_source="catalogue",
        created_at=now,
    )
    CallRecordFactory(trace_id="other")
    response = member_client.get(f"/calls/{second.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert [a.pk for a in response.context["attempts"]] == [first.pk, second.pk]
    assert "HTTP 429" in body and "fig-waterfall" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert(1)" not in body
    assert "<img src=x" not in body
    assert response.context["cost"]["computed"] == Decimal("0.007")
    assert "= $0.00700000" in body


def test_a_missing_call_is_a_404(member_client):
    assert member_client.get("/calls/999999/").status_code == 404


def test_call_detail_rejects_post(member_client):
    record = CallRecordFactory()
    assert member_client.post(f"/calls/{record.pk}/").status_code == 405


def test_csv_cells_cannot_become_spreadsheet_formulas(member_client, config, now):
    CallRecordFactory(task_type="=HYPERLINK(1)", created_at=now - timedelta(hours=1))
    rollup_run()
    body = member_client.get("/dashboard/?export=route").content.decode()
    assert "'=HYPERLINK(1)" in body


def test_call_detail_query_count_is_pinned(member_client, now, django_assert_max_num_queries):
    record = CallRecordFactory(trace_id="t", created_at=now)
    CallRecordFactory.create_batch(5, trace_id="t", created_at=now)
    with django_assert_max_num_queries(5):
        assert member_client.get(f"/calls/{record.pk}/").status_code == 200


def test_the_default_dashboard_shows_live_traffic_and_says_what_it_leaves_out(member_client, config, now):
    CallRecordFactory.create_batch(
        19, source="drill", status=CallStatus.ERROR, created_at=now - timedelta(hours=2)
    )
    CallRecordFactory.create_batch(3, source="gateway", created_at=now - timedelta(hours=2))
    rollup_run()
    CallRecordFactory(source="drill", created_at=now)
    response = member_client.get("/dashboard/?range=1h")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Live traffic only" in body
    assert response.context["tiles"][2]["value"] is None  # no live call in the last hour: no error rate
    day = member_client.get("/dashboard/?range=24h")
    assert day.context["tiles"][1]["value"] == 3
    assert day.context["tiles"][2]["value"] == 0  # 20 drill errors, none of them live
    assert "left out 20 fault drill calls" in " ".join(day.content.decode().split())
    assert 'name="source"' in body and 'value="live" selected' in body


def test_all_sources_count_the_drill_and_links_keep_the_choice(member_client, config, now):
    CallRecordFactory.create_batch(
        4, source="drill", status=CallStatus.ERROR, created_at=now - timedelta(hours=2)
    )
    CallRecordFactory(source="api", created_at=now - timedelta(hours=2))
    rollup_run()
    response = member_client.get("/dashboard/?range=24h&source=all")
    assert response.context["tiles"][1]["value"] == 5
    assert response.context["tiles"][2]["value"] == 80
    assert "Live traffic only" not in response.content.decode()
    assert "source=all" in response.context["q"].query_string()


def test_an_unknown_source_falls_back_to_live_traffic_with_a_note(member_client, config):
    response = member_client.get("/dashboard/?source=<b>nope</b>")
    assert response.status_code == 200
    assert response.context["q"].source == "live"
    assert b"Unknown source" in response.content and b"<b>nope</b>" not in response.content


def test_the_percentile_switch_redraws_latency_and_is_kept_in_links(member_client, traffic):
    response = member_client.get("/dashboard/?range=30d&source=all&pctl=p99", **HTMX)
    body = response.content.decode()
    latency = next(c for c in response.context["charts"] if c["name"] == "latency")["fig"]
    assert latency["layout"]["title"]["text"] == "Latency p99 by model"
    assert len(latency["data"]) == 3  # one line per model
    assert "pctl=p99" in response.context["q"].query_string()
    assert 'name="pctl" value="p99"' in body  # a filter change keeps it
    assert 'aria-current="true">p99<' in body


def test_an_unknown_percentile_gets_a_note(member_client, traffic):
    response = member_client.get("/dashboard/?range=30d&pctl=p12")
    assert response.context["percentile"] == 95
    assert b"Unknown percentile" in response.content


def test_a_chain_calls_trace_shows_the_steps_it_skipped_and_why(member_client, fake_provider, monkeypatch):
    from routing import orchestrator
    from tests.factories import FallbackChainFactory, TaskRouteFactory

    monkeypatch.delenv("LOCKED_KEY", raising=False)
    locked = fake_provider.provider(name="locked-p", api_key_env="LOCKED_KEY")
    main = fake_provider.model("gpt-locked", provider=locked)
    also_locked = fake_provider.model("gpt-locked-2", provider=locked)
    spare = fake_provider.model("spare")
    chain = FallbackChainFactory(name="spares", models=[also_locked, spare])
    TaskRouteFactory(task_type="triage", model=main, fallback_chain=chain)

    result = orchestrator.route("triage", "Which queue?")
    assert result.model == "spare"
    [record] = CallRecord.objects.filter(model_name="spare")

    response = member_client.get(f"/calls/{record.pk}/")
    body = response.content.decode()
    assert response.status_code == 200
    bars, skips = response.context["waterfall"]["data"]
    assert skips["y"] == ["1. gpt-locked (route model, skipped)", "2. gpt-locked-2 (step 1, skipped)"]
    assert all("needs key: set LOCKED_KEY" in t for t in skips["text"])
    assert bars["y"] == ["3. spare (step 2)"]
    assert body.count('class="skipped"') == 2 and "needs key: set LOCKED_KEY" in body
    # Room right of the bars for their labels: the x range ends past the longest bar.
    end = max(b + w for b, w in zip(bars["base"], bars["x"], strict=True))
    assert response.context["waterfall"]["layout"]["xaxis"]["range"][1] > end * 1.2


@pytest.mark.parametrize("name", ["\tcmd", "\r=1+1", "+SUM(A1)", "-2+3", "@A1"])
def test_csv_cells_starting_like_a_formula_stay_text(member_client, config, now, name):
    CallRecordFactory(task_type=name, created_at=now - timedelta(hours=1))
    rollup_run()

    rows = list(csv.reader(io.StringIO(member_client.get("/dashboard/?export=route").content.decode())))

    assert ["'" + name] == [row[0] for row in rows[1:] if row[0].endswith(name)]


def test_call_detail_shows_the_tool_calls_apart_from_the_answer_text_escaped(member_client, now):
    calls = [
        {
            "id": "call_<b>",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "<i>Oslo</i>"}'},
        }
    ]
    record = CallRecordFactory(
        created_at=now,
        request_text="user: Weather?\n[image: image/png, 3 KB]",
        response_text="Checking <now>.\n\ntool_calls: " + json.dumps(calls),
    )

    response = member_client.get(f"/calls/{record.pk}/")

    body = response.content.decode()
    assert response.context["answer_text"] == "Checking <now>."
    assert [(c["name"], c["id"]) for c in response.context["answer_calls"]] == [("weather", "call_<b>")]
    assert "Checking &lt;now&gt;." in body and "call_&lt;b&gt;" in body
    assert "&lt;i&gt;Oslo&lt;/i&gt;" in body and "<i>Oslo" not in body
    assert "[image: image/png, 3 KB]" in body


def test_call_detail_shows_a_cut_tool_call_text_as_it_was_recorded(member_client, now):
    record = CallRecordFactory(created_at=now, response_text='tool_calls: [{"id": "c1", "functi')

    response = member_client.get(f"/calls/{record.pk}/")

    assert response.context["answer_calls"] == []
    assert response.context["answer_text"] == 'tool_calls: [{"id": "c1", "functi'


def test_the_dashboard_breaks_down_and_filters_by_endpoint(
    member_client, config, now, django_assert_max_num_queries
):
    CallRecordFactory.create_batch(
        3, source="gateway", endpoint="embeddings", created_at=now - timedelta(hours=2)
    )
    CallRecordFactory.create_batch(
        2, source="gateway", endpoint="chat.completions", created_at=now - timedelta(hours=2)
    )
    rollup_run()
    CallRecordFactory(source="gateway", endpoint="embeddings", created_at=now)  # the live tail
    CallRecordFactory(source="api", created_at=now)

    response = member_client.get("/dashboard/?range=24h")
    rows = {
        r["label"]: r["count"]
        for s in response.context["breakdowns"]
        if s["name"] == "endpoint"
        for r in s["rows"]
    }
    assert rows == {"Embeddings": 4, "Chat completions": 2, "(not the gateway)": 1}
    assert "By endpoint" in response.content.decode()

    with django_assert_max_num_queries(19):
        embeddings = member_client.get("/dashboard/?range=24h&endpoint=embeddings")
    assert embeddings.context["tiles"][1]["value"] == 4
    assert 'name="endpoint"' in embeddings.content.decode()
    assert 'value="embeddings" selected' in embeddings.content.decode()


def test_the_native_apis_endpoints_are_named_in_the_breakdown_and_filter(member_client, config, now):
    CallRecordFactory.create_batch(2, source="api", endpoint="api.route", created_at=now)
    CallRecordFactory(source="api", endpoint="api.parallel", created_at=now)
    CallRecordFactory(source="api", created_at=now)  # the Python API: not the gateway

    response = member_client.get("/dashboard/?range=24h")
    rows = {
        r["label"]: r["count"]
        for s in response.context["breakdowns"]
        if s["name"] == "endpoint"
        for r in s["rows"]
    }
    assert rows == {"Native API: route": 2, "Native API: parallel": 1, "(not the gateway)": 1}
    assert '<option value="api.consensus">Native API: consensus</option>' in response.content.decode()

    filtered = member_client.get("/calls/?endpoint=api.route")
    assert len(filtered.context["page"].calls) == 2


def test_an_unknown_endpoint_filter_is_ignored_with_a_note(member_client, config):
    response = member_client.get("/dashboard/?endpoint=<i>x</i>")
    assert response.status_code == 200
    assert b"Unknown endpoint" in response.content and b"<i>x</i>" not in response.content


def test_the_call_log_filters_by_endpoint_and_a_call_shows_it(member_client, config, now):
    call = CallRecordFactory(endpoint="embeddings", created_at=now - timedelta(minutes=5))
    CallRecordFactory(endpoint="chat.completions", created_at=now - timedelta(minutes=5))
    response = member_client.get("/calls/?endpoint=embeddings")
    assert [c.id for c in response.context["page"].calls] == [call.id]
    detail = member_client.get(f"/calls/{call.id}/").content.decode()
    assert '<dt>Endpoint</dt><dd>Embeddings <span class="muted">embeddings</span></dd>' in detail


def test_the_trace_table_marks_the_attempts_whose_answer_was_tool_calls(member_client, now):
    calls = json.dumps([{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}])
    first = CallRecordFactory(trace_id="tt", created_at=now, response_text="tool_calls: " + calls)
    second = CallRecordFactory(
        trace_id="tt", created_at=now + timedelta(seconds=1), response_text="Said tool_calls: in passing."
    )
    third = CallRecordFactory(
        trace_id="tt", created_at=now + timedelta(seconds=2), response_text="Ok.\n\ntool_calls: " + calls
    )

    response = member_client.get(f"/calls/{second.pk}/")

    marked = {a.pk: a.made_tool_calls for a in response.context["attempts"]}
    assert marked == {first.pk: True, second.pk: False, third.pk: True}
    assert response.content.decode().count('class="badge tools"') == 2


def test_call_detail_names_the_endpoint_as_the_dashboard_does(member_client, now):
    record = CallRecordFactory(created_at=now, endpoint="messages")
    unknown = CallRecordFactory(created_at=now, endpoint="future.thing")

    assert "Messages (Anthropic)" in member_client.get(f"/calls/{record.pk}/").content.decode()
    assert "future.thing" in member_client.get(f"/calls/{unknown.pk}/").content.decode()
