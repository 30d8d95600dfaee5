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


def test_home_overview_lists_routes_chains_and_models_in_few_queries(
    member_client, django_assert_max_num_queries
):
    from tests.factories import FallbackChainFactory, ModelConfigFactory, TaskRouteFactory

    models = [ModelConfigFactory(name=f"m-{i}", capabilities=["reasoning"]) for i in range(5)]
    FallbackChainFactory(name="default", models=models[:3])
    for i in range(5):
        TaskRouteFactory(task_type=f"task_{i}", model=models[i])
    with django_assert_max_num_queries(12):
        response = member_client.get("/")
    body = response.content.decode()
    assert "task_4" in body
    assert "m-0 → m-1 → m-2" in body
    assert "route:task_0" in body


def test_home_escapes_configured_text(member_client):
    from tests.factories import TaskRouteFactory

    TaskRouteFactory(task_type="safe", description="<script>alert(1)</script>")
    body = member_client.get("/").content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


def test_healthz_is_open(client):
    assert client.get("/healthz").json() == {"ok": True}


def test_plotly_js_is_found_among_our_static_files():
    from django.contrib.staticfiles import finders

    assert finders.find("plotly/plotly.min.js")
    assert finders.find("django_htmx/htmx-2.min.js")
