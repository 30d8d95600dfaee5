"""The default simulated models in the playground, in a real browser: they answer the prompt,
and they differ (issue 15: they used to give the same template whatever was asked)."""

from pathlib import Path

import pytest
from django.conf import settings

from routing.config_io import config_import
from tests.browser import login
from tests.factories import UserFactory

pytestmark = pytest.mark.browser

MODELS = ["sim-smart", "sim-coder", "sim-fast", "sim-tiny"]
ALL_FINISHED = (
    "document.querySelectorAll('.pg-col').length > 0 && Array.from(document.querySelectorAll('.pg-col'))"
    ".every(c => ['ok','error','cancelled'].includes(c.dataset.status))"
)


def test_the_default_simulated_models_answer_17_times_23_and_the_strong_ones_get_it_right(
    live_url, page, tmp_path
):
    config_import(text=(Path(settings.BASE_DIR) / "config" / "defaults.yaml").read_text())
    UserFactory(username="pat")
    login(page, live_url, "pat")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_url}/playground/")
    for name in MODELS:
        page.check(f"input[name=models][value='{name}']")
    page.fill("#id_prompt", "What is 17 * 23?")
    page.click("#pg-send")
    page.wait_for_function(ALL_FINISHED, timeout=30_000)

    answers = {}
    for col in page.locator(".pg-col").all():
        text = col.locator("[data-field=text]").inner_text().strip()
        answers[next(m for m in MODELS if m in col.inner_text())] = text
    page.screenshot(path=str(tmp_path / "playground-17x23.png"), full_page=True)
    print(answers, tmp_path / "playground-17x23.png")

    assert answers["sim-smart"] == answers["sim-coder"] == "17 * 23 = 391"
    assert all(a.startswith("17 * 23 = ") for a in answers.values())
