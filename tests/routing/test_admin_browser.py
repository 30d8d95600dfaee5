"""An operator edits a route's prompt, reads the diff and rolls back, in a real browser."""

from pathlib import Path

import pytest
from django.conf import settings

from routing.config_io import config_import
from routing.models import TaskRoute
from tests.browser import login
from tests.factories import UserFactory

pytestmark = pytest.mark.browser

DEFAULTS = Path(settings.BASE_DIR) / "config" / "defaults.yaml"


def test_an_operator_edits_a_prompt_sees_the_diff_and_rolls_back(live_url, page):
    config_import(text=DEFAULTS.read_text())
    UserFactory(username="olivia", is_staff=True, is_superuser=True)
    login(page, live_url, "olivia")
    route = TaskRoute.objects.get(task_type="summarization")

    page.goto(f"{live_url}/admin/routing/taskroute/{route.pk}/change/")
    prompt = page.locator("#id_system_prompt")
    prompt.fill(prompt.input_value() + "\nUse bullet points.")
    page.fill("#id_prompt_note", "bullets")
    page.click("input[name=_save]")
    page.wait_for_url(f"{live_url}/admin/routing/taskroute/")

    page.goto(f"{live_url}/admin/routing/taskroute/{route.pk}/change/")
    page.click("text=Prompt history")
    assert page.locator(".prompt-diff ins").first.inner_text().strip() == "Use bullet points."
    assert page.locator(".prompt-diff del").count() == 0  # an added line marks only what was added
    page.click("text=Make v1 active")
    assert "Prompt v1 is active again." in page.locator(".messagelist").inner_text()
    route.refresh_from_db()
    assert route.active_prompt.version == 1
    assert page.dialogs == []
