from datetime import timedelta

import pytest

from metrics.rollups import rollup_run
from tests.browser import login
from tests.factories import ModelConfigFactory, UserFactory
from tests.metrics.conftest import make_records

pytestmark = pytest.mark.browser

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
