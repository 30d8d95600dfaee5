"""The native API's docs page renders in a real browser with nothing fetched off-host."""

import pytest

from tests.browser import login
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_docs_page_renders_the_operations_without_any_cdn(live_url, page):
    outside: list[str] = []

    def guard(route):
        url = route.request.url
        if url.startswith(live_url) or url.startswith("data:"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    UserFactory(username="dana")
    page.route("**/*", guard)
    login(page, live_url, "dana")
    page.goto(f"{live_url}/api/v1/docs")
    page.wait_for_selector(".opblock", timeout=15_000)
    text = page.inner_text("body")
    assert "/api/v1/route/{task_type}" in text and "/api/v1/consensus" in text and "/api/v1/parallel" in text
    assert outside == []
    assert page.dialogs == []
