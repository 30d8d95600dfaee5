import os
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from metrics.rollups import rollup_run
from tests.browser import login
from tests.compare.conftest import seed_default_chain
from tests.factories import ModelConfigFactory, UserFactory
from tests.metrics.conftest import make_records

pytestmark = pytest.mark.browser
__all__ = ["seed_default_chain"]

REQUESTS_LEGEND = (
    "[...document.querySelectorAll('#chart-requests .legendtext')].map(e => e.textContent).sort().join()"
)


def test_charts_render_and_a_filter_change_redraws_them_without_a_page_load(live_url, page, now):
    for name in ("alpha", "beta", "gamma"):
        ModelConfigFactory(name=name)
    make_records(300, start=now - timedelta(days=6), span=timedelta(days=6))
    rollup_run()
    UserFactory(username="dana")
    login(page, live_url, "dana")

    page.goto(f"{live_url}/dashboard/?range=7d")
    page.wait_for_selector("#chart-cost .main-svg")
    assert page.locator("#chart-requests .main-svg").count() >= 1
    assert page.locator("#chart-cost .trace.bars").count() >= 1

    page.evaluate("window.__sameDocument = true")
    with page.expect_response(
        lambda r: "model=beta" in r.url and r.request.headers.get("hx-request") == "true"
    ):
        page.select_option("#dashboard-model", "beta")
    # The response arriving is not the charts being redrawn: wait for the new legend.
    page.wait_for_function(f"{REQUESTS_LEGEND} === 'beta'")
    assert page.evaluate("window.__sameDocument") is True  # no full page load happened
    assert "model=beta" in page.url  # the filter lives in the URL
    assert page.locator("#dashboard-model").input_value() == "beta"

    page.go_back()
    page.wait_for_function(f"{REQUESTS_LEGEND} === 'alpha,beta,gamma'")
    assert page.locator("#dashboard-model").input_value() == ""
    assert page.dialogs == []


LATENCY_LEGEND = (
    "[...document.querySelectorAll('#chart-latency .legendtext')].map(e => e.textContent).sort().join()"
)


def _shoot(page, name: str, tmp_path) -> None:
    """A full-page screenshot at 1440×900 (DASHBOARD_SCREENSHOTS=<dir> keeps them to look at)."""
    target = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"), full_page=True)


def _texts(page, selector: str) -> list[str]:
    """SVG text (Plotly's ticks and labels have no innerText)."""
    return page.evaluate(f"[...document.querySelectorAll({selector!r})].map(e => e.textContent)")


def _no_text_past_the_right_edge(page, selector: str) -> None:
    overflow = page.evaluate(
        """(sel) => { const root = document.querySelector(sel); const svg = root.querySelector('.main-svg');
        const right = svg.getBoundingClientRect().right;
        return [...root.querySelectorAll('text')].filter(t => t.textContent.trim() &&
            t.getBoundingClientRect().right > right + 0.5).map(t => t.textContent); }""",
        selector,
    )
    assert overflow == []


def test_after_a_drill_the_default_dashboard_shows_live_traffic_and_a_chain_trace_its_skips(
    live_url, page, now, tmp_path, seed_default_chain, fake_provider, monkeypatch, settings
):
    from compare.services.drills import FaultInput, drill_create, drill_run
    from metrics.models import CallRecord
    from routing import orchestrator
    from tests.factories import FallbackChainFactory, TaskRouteFactory

    page.set_viewport_size({"width": 1440, "height": 900})
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "BREAKER_FAILURES": 3, "RETRY_MAX": 0}
    # Live traffic: a route whose own model and first chain step have no key, served by the third.
    monkeypatch.delenv("LOCKED_KEY", raising=False)
    locked = fake_provider.provider(name="locked-p", api_key_env="LOCKED_KEY")
    main = fake_provider.model("gpt-locked", provider=locked)
    chain = FallbackChainFactory(
        name="spares",
        models=[fake_provider.model("gpt-locked-2", provider=locked), fake_provider.model("spare")],
    )
    TaskRouteFactory(task_type="triage", model=main, fallback_chain=chain)
    drill = drill_create(
        user=None,
        target_kind="chain",
        target="default",
        faults=[FaultInput("gpt-4o", "server_error", 1.0)],
        requests=20,
        concurrency=2,
    )

    def traffic():
        for _ in range(4):
            orchestrator.route("triage", "Which queue?")
        drill_run(drill_id=drill.pk)

    # Playwright's sync API keeps an event loop in this thread; the sync engine API refuses one.
    worker = threading.Thread(target=traffic)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive()
    drill_errors = CallRecord.objects.filter(source="drill", status="error").count()
    assert drill_errors >= 1
    rollup_run()
    UserFactory(username="dana")
    login(page, live_url, "dana")

    page.goto(f"{live_url}/dashboard/?range=1h")
    page.wait_for_selector("#chart-cost .main-svg")
    tiles = page.locator(".tile")
    error_tile = tiles.filter(has_text="Error rate")
    assert error_tile.locator(".tile-value").inner_text() == "0.0%"  # the drill's errors are not live
    scope = page.locator("#source-scope").inner_text()
    assert "Live traffic only" in scope
    drill_calls = CallRecord.objects.filter(source="drill").count()
    assert f"left out {drill_calls} fault drill calls" in " ".join(scope.split())
    assert page.locator("#breakers").inner_text().count(f"Drill #{drill.pk}") == 1
    # Money axis in dollars.
    ticks = _texts(page, "#chart-cost .ytick text")
    assert ticks and all(t.startswith("$") for t in ticks)
    _shoot(page, "dashboard", tmp_path)

    # The percentile switch redraws the latency chart with one line per model.
    page.evaluate("window.__sameDocument = true")
    page.click(".pctl-switch a:text('p99')")
    page.wait_for_function(
        "document.querySelector('#chart-latency .gtitle')?.textContent === 'Latency p99 by model'"
    )
    assert page.evaluate(LATENCY_LEGEND) == "spare"
    assert page.locator("#chart-latency .scatterlayer .trace").count() == 1
    assert page.evaluate("window.__sameDocument") is True
    assert "pctl=p99" in page.url

    # All sources: the drill is counted.
    page.click("#source-scope a")
    page.wait_for_function("!document.querySelector('#source-scope')")
    assert page.locator(".tile").filter(has_text="Error rate").locator(".tile-value").inner_text() != "0.0%"

    page.goto(f"{live_url}/calls/")
    page.wait_for_selector("table")
    _shoot(page, "calls", tmp_path)

    served = CallRecord.objects.filter(model_name="spare", source="api").first()
    page.goto(f"{live_url}/calls/{served.pk}/")
    page.wait_for_selector("#chart-waterfall .main-svg")
    labels = _texts(page, "#chart-waterfall .ytick text")
    assert sorted(labels) == [
        "1. gpt-locked (route model, skipped)",
        "2. gpt-locked-2 (step 1, skipped)",
        "3. spare (step 2)",
    ]
    texts = " ".join(_texts(page, "#chart-waterfall .textpoint, #chart-waterfall .bartext"))
    assert "needs key: set LOCKED_KEY" in texts and "ok ·" in texts
    _no_text_past_the_right_edge(page, "#chart-waterfall")
    assert page.locator("tr.skipped").count() == 2
    _shoot(page, "call-detail", tmp_path)

    page.goto(f"{live_url}/")
    warning = page.locator(".route-warning").first.inner_text()
    assert "gpt-locked cannot answer (needs key: set LOCKED_KEY): calls go to chain step 2, spare" in warning
    _shoot(page, "overview", tmp_path)
    assert page.dialogs == []
