import pytest

from tests.browser import login
from tests.factories import UserFactory

pytestmark = pytest.mark.browser


def test_a_user_can_log_in_and_see_the_home_page_in_a_real_browser(live_url, page):
    UserFactory(username="carol")
    login(page, live_url, "carol")
    assert page.locator("h1").first.inner_text() == "Overview"
    assert page.evaluate("typeof htmx") == "object"
