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


@pytest.fixture
def keyless_route(monkeypatch):
    """Route `summarize`: gpt-4o-mini needs a key nobody set; its chain falls to a simulated model."""
    from routing.models import ProviderKind
    from tests.factories import FallbackChainFactory, ModelConfigFactory, ProviderFactory, TaskRouteFactory

    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    openai = ProviderFactory(name="openai", kind=ProviderKind.OPENAI, api_key_env="NO_SUCH_KEY", options={})
    mini = ModelConfigFactory(name="gpt-4o-mini", provider=openai)
    gpt4o = ModelConfigFactory(name="gpt-4o", provider=openai)
    sim = ModelConfigFactory(name="sim-fast")
    chain = FallbackChainFactory(name="default", models=[gpt4o, sim])
    return TaskRouteFactory(task_type="summarize", model=mini, fallback_chain=chain)


def test_the_overview_warns_when_a_routes_model_cannot_answer(member_client, keyless_route):
    body = " ".join(member_client.get("/").content.decode().split())
    assert (
        "gpt-4o-mini cannot answer (needs key: set NO_SUCH_KEY): calls go to chain step 2, sim-fast (simulated)."
        in body
    )
    assert "Chain step 1, gpt-4o, cannot answer (needs key: set NO_SUCH_KEY)." in body


def test_the_overview_says_nothing_when_every_model_can_answer(member_client):
    from tests.factories import FallbackChainFactory, ModelConfigFactory, TaskRouteFactory

    TaskRouteFactory(
        task_type="ok",
        model=ModelConfigFactory(name="sim-a"),
        fallback_chain=FallbackChainFactory(name="c", models=[ModelConfigFactory(name="sim-b")]),
    )
    assert b"cannot answer" not in member_client.get("/").content


def test_a_route_whose_models_all_lack_keys_says_every_call_fails(member_client, keyless_route):
    keyless_route.fallback_chain.steps.filter(model__name="sim-fast").delete()
    body = " ".join(member_client.get("/").content.decode().split())
    assert (
        "gpt-4o-mini cannot answer (needs key: set NO_SUCH_KEY) and no chain step can either: every call fails."
        in body
    )


def test_the_admin_route_page_warns_too(staff_client, keyless_route):
    body = staff_client.get(f"/admin/routing/taskroute/{keyless_route.pk}/change/").content.decode()
    assert "gpt-4o-mini cannot answer (needs key: set NO_SUCH_KEY)" in body
