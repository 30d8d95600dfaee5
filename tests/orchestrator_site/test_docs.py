"""The guides are pages of the app (login required), with links between them kept inside it."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_it_lists_every_guide(member_client):
    response = member_client.get(reverse("guides"))
    assert response.status_code == 200
    assert reverse("guide", args=["gateway"]).encode() in response.content


def test_it_renders_a_guide_with_links_to_other_guides_inside_the_app(member_client):
    response = member_client.get(reverse("guide", args=["gateway"]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>The gateway" in html
    assert 'href="/docs/production/"' in html
    assert 'href="production.md"' not in html


def test_it_answers_404_for_an_unknown_guide_or_a_path_outside_docs(member_client):
    assert member_client.get("/docs/no-such-guide/").status_code == 404
    assert member_client.get("/docs/..%2Fsettings/").status_code == 404


def test_it_needs_a_login(client):
    response = client.get(reverse("guide", args=["gateway"]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_api_page_has_the_app_navigation_and_links_the_gateway_guide(member_client):
    response = member_client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="topbar"' in html
    assert reverse("guide", args=["gateway"]) in html
    assert 'id="swagger-ui"' in html and "swagger-ui-bundle.js" in html


def test_favicon_is_served_without_login(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("favicon.svg")
