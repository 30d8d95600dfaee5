"""The compare page in a real browser: estimate, launch, a live progress bar, the matrix, a vote."""

import threading

import pytest
from django.db import connection

from compare.models import CompareCell, CompareRun
from compare.services import cells as cell_service
from tests.browser import login, screenshot_path
from tests.compare.conftest import simulated_model
from tests.factories import UserFactory

pytestmark = pytest.mark.browser


def test_a_run_is_estimated_launched_followed_and_voted_on_in_the_browser(live_url, page):
    UserFactory(username="dora")
    simulated_model("sim-a", provider="sim-1")
    simulated_model("sim-b", provider="sim-2")
    login(page, live_url, "dora")
    page.goto(f"{live_url}/compare/")
    page.fill("#id_prompts_text", "What is the capital of France?\nName a prime number")
    page.check("input[value='model:sim-a']")
    page.check("input[value='model:sim-b']")
    page.fill("#id_max_tokens", "32")
    page.click("text=Estimate cost")
    estimate = page.wait_for_selector("[data-estimate]")
    assert "for 4 cells" in estimate.inner_text()
    assert CompareRun.objects.count() == 0

    # Bad input is explained in place and nothing is launched.
    page.locator("select[name=assertion_kind]").first.select_option("regex")
    page.locator("input[name=assertion_value]").first.fill("(unclosed")
    page.click("text=Launch run")
    error = page.wait_for_selector(".cmp-errors")
    assert "the regex '(unclosed' does not compile" in error.inner_text()
    assert CompareRun.objects.count() == 0
    page.locator("select[name=assertion_kind]").first.select_option("")

    page.click("text=Launch run")
    page.wait_for_url(f"{live_url}/compare/runs/*/")
    assert "0 / 4 cells" in page.inner_text("#cmp-progress")

    # No worker here: a thread plays the worker while the page polls the progress fragment
    # (Playwright's own event loop owns the test thread).
    def work() -> None:
        for cell_id in CompareCell.objects.order_by("id").values_list("id", flat=True):
            cell_service.cell_run(cell_id=cell_id)
        connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=60)
    page.wait_for_selector("#cmp-progress[data-status=done]", timeout=15_000)
    assert page.get_attribute("#cmp-progress", "hx-trigger") is None  # polling stopped
    # The finished run loads its matrix without a reload.
    page.wait_for_selector("td[data-status=done]", timeout=15_000)
    assert page.locator("td[data-status=done]").count() == 4

    page.locator("form.cmp-vote").first.locator("button[value=a]").click()
    page.wait_for_selector("text=Vote recorded")
    from playground.models import Vote

    assert Vote.objects.get().source == "compare"
    assert page.dialogs == []


def test_cells_fill_in_as_they_finish_before_the_run_ends(live_url, page):
    from tests.compare.conftest import make_run

    UserFactory(username="dora")
    page.set_viewport_size({"width": 1440, "height": 900})
    for i in range(4):
        simulated_model(f"sim-{i}", provider=f"sim-{i}")
    run = make_run(
        inputs=["What is 17 * 23?", "Name a prime number", "Say hi"],
        candidates=[f"model:sim-{i}" for i in range(4)],
        user=None,
    )
    login(page, live_url, "dora")
    page.goto(f"{live_url}/compare/runs/{run.pk}/")
    assert page.locator("td[data-status=pending]").count() == 12
    # Cells arrive one by one: the matrix itself is not reloaded (this mark would go).
    page.evaluate("document.querySelector('.cmp-matrix').dataset.mark = 'first'")
    half = threading.Event()
    rest = threading.Event()

    def work() -> None:
        ids = list(CompareCell.objects.order_by("id").values_list("id", flat=True))
        for cell_id in ids[:6]:
            cell_service.cell_run(cell_id=cell_id)
        half.set()
        rest.wait(timeout=60)
        for cell_id in ids[6:]:
            cell_service.cell_run(cell_id=cell_id)
        connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert half.wait(timeout=60)
        # 6 of 12 done: the page shows those six answers while the run is still running.
        page.wait_for_function(
            "document.querySelectorAll('td[data-status=done]').length === 6", timeout=15_000
        )
        assert page.get_attribute("#cmp-progress", "data-status") == "running"
        assert "6 / 12 cells" in page.inner_text("#cmp-progress")
        assert page.locator("td[data-status=pending]").count() == 6
        assert page.locator("td[data-status=done] .cmp-out").first.inner_text().strip()
        assert page.get_attribute(".cmp-matrix", "data-mark") == "first"
        page.screenshot(path=screenshot_path("compare-in-progress"), full_page=True)
    finally:
        rest.set()
        worker.join(timeout=60)
    page.wait_for_selector("#cmp-progress[data-status=done]", timeout=15_000)
    page.wait_for_function("document.querySelectorAll('td[data-status=done]').length === 12", timeout=15_000)


def test_a_running_drill_shows_requests_done_errors_and_time_left(live_url, page, fake_provider):
    from compare.models import Drill
    from compare.services.drills import drill_run
    from tests.factories import FallbackChainFactory
    from tests.fake_provider import Reply

    UserFactory(username="sam", is_staff=True)
    FallbackChainFactory(name="drilled", models=[fake_provider.model("drill-target")])
    # Two answered, one refused (no retry, no fallback: an error), then two held in flight.
    fake_provider.script(
        "drill-target",
        Reply.ok("fine"),
        Reply.ok("fine"),
        Reply.model_not_found(),
        Reply.held("g"),
        Reply.held("g"),
    )
    drill = Drill.objects.create(
        target_kind="chain", target="drilled", faults=[], requests=5, concurrency=1, prompt="ping"
    )
    page.set_viewport_size({"width": 1440, "height": 900})
    login(page, live_url, "sam")
    page.goto(f"{live_url}/compare/drills/{drill.pk}/")

    def work() -> None:
        drill_run(drill_id=drill.pk)
        connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        page.wait_for_function(
            "(document.querySelector('[data-drill-progress] [data-field=done]')?.textContent || '')"
            ".startsWith('3 / 5')",
            timeout=20_000,
        )
        progress = page.inner_text("[data-drill-progress]")
        assert "1 error so far" in progress
        assert " s left" in progress or "min left" in progress
        page.screenshot(path=screenshot_path("drill-in-progress"), full_page=True)
    finally:
        fake_provider.release("g")
        worker.join(timeout=60)
    page.wait_for_selector("text=Success rate", timeout=15_000)
    assert "(4 of 5 requests answered)" in page.inner_text("#drill-report")
