"""The compare page in a real browser: estimate, launch, a live progress bar, the matrix, a vote."""

import threading

import pytest
from django.db import connection

from compare.models import CompareCell, CompareRun
from compare.services import cells as cell_service
from tests.browser import login
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
