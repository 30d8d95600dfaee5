import pytest

pytestmark = pytest.mark.django_db


def test_home_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_home_lists_models_for_a_member(member_client):
    response = member_client.get("/")
    assert response.status_code == 200
    assert b"Models" in response.content


def test_healthz_is_open(client):
    assert client.get("/healthz").json() == {"ok": True}


def test_plotly_js_is_found_among_our_static_files():
    from django.contrib.staticfiles import finders

    assert finders.find("plotly/plotly.min.js")
    assert finders.find("django_htmx/htmx-2.min.js")
