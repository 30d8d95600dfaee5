"""A new operator's first hour on a fresh install, in a real browser.

The defaults are loaded as `make run` loads them (config/defaults.yaml), then a staff user logs in,
creates a route in the admin, compares three simulated models side by side, runs a consensus with
a judge, votes in the arena, runs a compare and a drill, and opens the dashboard. Every assertion
is on what the screen shows.
"""

import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from compare.models import CompareCell, Drill
from compare.services import cells as cell_service
from compare.services.drills import drill_run
from tests.browser import login
from tests.factories import UserFactory

pytestmark = pytest.mark.browser

DEFAULTS = Path(settings.BASE_DIR) / "config" / "defaults.yaml"
SIMULATED = ("sim-tiny", "sim-coder", "sim-smart")
OPEN_QUESTION = "Give me three tips for writing good tests."
ALL_FINISHED = (
    "Array.from(document.querySelectorAll('.pg-col')).length > 0 && "
    "Array.from(document.querySelectorAll('.pg-col'))"
    ".every(c => ['ok','error','cancelled'].includes(c.dataset.status))"
)


def _playground_send(page, live_url, *, prompt: str, models: tuple[str, ...], mode: str = "models") -> None:
    page.goto(f"{live_url}/playground/")
    page.check(f"input[name=mode][value={mode}]")
    for name in models:
        page.check(f"input[name=models][value='{name}']")
    page.fill("#id_prompt", prompt)


def _answers(page) -> dict[str, str]:
    return {
        name: page.locator(f".pg-col[data-label='{name}'] [data-field=text]").inner_text().strip()
        for name in SIMULATED
    }


def test_a_new_operator_walks_from_login_to_the_dashboard(live_url, page):
    call_command("import_config", str(DEFAULTS), "--if-empty", "--brief")
    UserFactory(username="olive", is_staff=True, is_superuser=True)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.set_default_timeout(10_000)
    login(page, live_url, "olive")

    # A route made in the admin, answered by a simulated model.
    page.goto(f"{live_url}/admin/routing/taskroute/add/")
    page.fill("#id_task_type", "arithmetic")
    option = page.locator("#id_model option", has_text="sim-smart").first
    page.select_option("#id_model", option.get_attribute("value"))
    page.fill("#id_system_prompt", "Answer with the number only.")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully", timeout=10_000)
    assert "arithmetic" in page.inner_text("#result_list")

    # Three simulated models side by side: different answers, the stronger ones right.
    _playground_send(page, live_url, prompt="What is 17 * 23?", models=SIMULATED)
    page.click("#pg-send")
    page.wait_for_function(ALL_FINISHED, timeout=20_000)
    answers = _answers(page)
    assert "391" in answers["sim-smart"] and "391" in answers["sim-coder"], answers
    _playground_send(page, live_url, prompt=OPEN_QUESTION, models=SIMULATED)
    page.click("#pg-send")
    page.wait_for_function(ALL_FINISHED, timeout=20_000)
    answers = _answers(page)
    assert len(set(answers.values())) >= 2, answers  # not one canned text for all

    # A consensus with a judge: the judge names a winner.
    _playground_send(page, live_url, prompt="What is 17 * 23?", models=SIMULATED, mode="consensus")
    page.select_option("#id_aggregator", "judge")
    page.select_option("#id_judge_model", "sim-smart")
    page.click("#pg-send")
    page.wait_for_selector(".pg-consensus:is([data-status=ok],[data-status=error])", timeout=20_000)
    panel = page.locator(".pg-consensus")
    assert panel.get_attribute("data-status") == "ok"

    judge = panel.locator("[data-field=judge]")
    assert judge.is_visible()
    assert '"best"' in judge.inner_text() and "391" in panel.locator("[data-field=text]").inner_text()

    # The blind arena: a vote reveals the two models and the leaderboard counts it.
    page.goto(f"{live_url}/playground/arena/")
    page.fill("#id_prompt", "What is the capital of France?")
    page.click("#pg-send")
    page.wait_for_function(ALL_FINISHED, timeout=20_000)
    round_text = page.inner_text(".pg-round")
    assert not any(
        name in round_text for name in ("sim-tiny", "sim-fast", "sim-flaky", "sim-coder", "sim-smart")
    )
    page.click("button[name=winner][value=a]")
    page.wait_for_selector("[data-revealed]")
    winner = page.inner_text("[data-reveal=a]")
    page.click("text=See the leaderboard")
    page.wait_for_selector(".pg-leaderboard")
    assert page.locator(f".pg-leaderboard tbody tr[data-model='{winner}']").count() == 1

    # A compare: launched from the page, cells fill in while the run is still running.
    page.goto(f"{live_url}/compare/")
    page.fill("#id_prompts_text", "What is 17 * 23?\nWhat is the capital of France?")
    for name in ("sim-tiny", "sim-smart"):
        page.check(f"input[value='model:{name}']")
    page.click("text=Launch run")
    page.wait_for_url(f"{live_url}/compare/runs/*/")
    assert "0 / 4 cells" in page.inner_text("#cmp-progress")
    half, rest = threading.Event(), threading.Event()

    def work() -> None:
        ids = list(CompareCell.objects.order_by("id").values_list("id", flat=True))
        for cell_id in ids[:2]:
            cell_service.cell_run(cell_id=cell_id)
        half.set()
        rest.wait(timeout=30)
        for cell_id in ids[2:]:
            cell_service.cell_run(cell_id=cell_id)
        connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert half.wait(timeout=30)
        page.wait_for_function("document.querySelectorAll('td[data-status=done]').length === 2")
        assert page.get_attribute("#cmp-progress", "data-status") == "running"
        assert "2 / 4 cells" in page.inner_text("#cmp-progress")
    finally:
        rest.set()
        worker.join(timeout=30)
    page.wait_for_selector("#cmp-progress[data-status=done]")
    page.wait_for_function("document.querySelectorAll('td[data-status=done]').length === 4")

    # A drill on the flaky demo chain, launched from the page.
    page.goto(f"{live_url}/compare/drills/")
    page.select_option("#id_target", "chain:flaky-demo")
    page.fill("#id_requests", "10")
    page.select_option("select[name=fault_model]", "sim-flaky")
    page.select_option("select[name=fault_kind]", "server_error")
    page.fill("#id_prompt", "ping")
    page.click("#drill-form button[type=submit]")
    page.wait_for_url(f"{live_url}/compare/drills/*/")
    drill = Drill.objects.get()

    def drill_work() -> None:  # the worker's part (Playwright's event loop owns this thread)
        drill_run(drill_id=drill.pk)
        connection.close()

    driller = threading.Thread(target=drill_work)
    driller.start()
    driller.join(timeout=30)
    page.wait_for_selector("text=Success rate", timeout=15_000)

    # The dashboard: live traffic by default, and it says the drill is left out.
    page.goto(f"{live_url}/dashboard/")
    scope = page.inner_text("#source-scope")
    assert "Live traffic only" in scope
    assert "fault drill calls" in scope and "compare runs" in scope
    assert page.dialogs == []
