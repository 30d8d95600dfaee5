"""/v1/models says which entries can answer now, and with which capabilities, in OpenAI's
model shape (the `openai` client's models.list() parses it)."""

import openai
import pytest

from gateway.services import api_key_create
from tests.factories import FallbackChainFactory, ModelConfigFactory, ProviderFactory, TaskRouteFactory
from tests.gateway.conftest import bearer

pytestmark = pytest.mark.django_db

MISSING = "ORCH_TEST_UNSET_KEY"


@pytest.fixture
def fleet(monkeypatch):
    monkeypatch.delenv(MISSING, raising=False)
    ready = ModelConfigFactory(name="sim", capabilities=["vision", "tool_use"])
    nokey = ModelConfigFactory(
        name="needs-key", provider=ProviderFactory(name="cloud", kind="openai", api_key_env=MISSING)
    )
    off = ModelConfigFactory(name="provider-off", provider=ProviderFactory(name="off", enabled=False))
    ModelConfigFactory(name="model-off", enabled=False)
    return ready, nokey, off


def entries(client, raw) -> dict[str, dict]:
    response = client.get("/v1/models", **bearer(raw))
    assert response.status_code == 200
    return {m["id"]: m for m in response.json()["data"]}


def test_each_model_says_whether_it_is_available_and_why_not(client, api_key, fleet):
    listed = entries(client, api_key[1])
    assert "model-off" not in listed
    assert listed["sim"]["orchestrator"] == {
        "available": True,
        "reason": None,
        "capabilities": ["tool_use", "vision"],
    }
    assert listed["needs-key"]["orchestrator"]["available"] is False
    assert listed["needs-key"]["orchestrator"]["reason"] == f"needs key: set {MISSING}"
    assert listed["provider-off"]["orchestrator"]["reason"] == "provider off disabled"
    assert {k for k in listed["sim"] if k != "orchestrator"} == {"id", "object", "created", "owned_by"}


def test_a_chain_is_available_when_any_step_is_and_has_their_capabilities(client, api_key, fleet):
    ready, nokey, off = fleet
    FallbackChainFactory(name="mixed", models=[nokey, ready])
    FallbackChainFactory(name="dead", models=[nokey, off])
    listed = entries(client, api_key[1])
    assert listed["chain:mixed"]["orchestrator"] == {
        "available": True,
        "reason": None,
        "capabilities": ["tool_use", "vision"],
    }
    dead = listed["chain:dead"]["orchestrator"]
    assert (dead["available"], dead["capabilities"]) == (False, [])
    assert dead["reason"] == (
        f"no usable model: needs-key (needs key: set {MISSING}); provider-off (provider off disabled)"
    )


def test_a_route_is_available_through_its_model_its_selection_or_its_chain(client, api_key, fleet):
    ready, nokey, _ = fleet
    TaskRouteFactory(task_type="fixed", model=nokey)
    TaskRouteFactory(task_type="rescued", model=nokey, fallback_chain=FallbackChainFactory(models=[ready]))
    TaskRouteFactory(task_type="by_vision").capabilities.set([ready.capabilities.get(slug="vision")])
    TaskRouteFactory(task_type="by_nothing_held").capabilities.create(slug="telepathy")
    listed = entries(client, api_key[1])
    assert listed["route:fixed"]["orchestrator"]["available"] is False
    assert listed["route:rescued"]["orchestrator"]["available"] is True
    assert listed["route:by_vision"]["orchestrator"]["capabilities"] == ["tool_use", "vision"]
    assert listed["route:by_nothing_held"]["orchestrator"] == {
        "available": False,
        "reason": "no model has its capabilities",
        "capabilities": [],
    }


def test_one_entry_by_id_has_the_same_fields(client, api_key, fleet):
    response = client.get("/v1/models/needs-key", **bearer(api_key[1]))
    assert response.json()["orchestrator"]["available"] is False


def test_the_listing_reads_a_fixed_number_of_queries(client, api_key, fleet, django_assert_max_num_queries):
    for i in range(5):
        FallbackChainFactory(name=f"c{i}", models=list(fleet))
        TaskRouteFactory(task_type=f"t{i}", model=fleet[0])
    entries(client, api_key[1])  # the key lookup is cached from here on
    with django_assert_max_num_queries(7):
        assert len(entries(client, api_key[1])) == 3 + 5 + 5


@pytest.mark.django_db(transaction=True)
def test_the_openai_client_lists_them_and_keeps_the_extra_field(live_url, fleet):
    client = openai.OpenAI(base_url=f"{live_url}/v1", api_key=api_key_create(name="app")[1], max_retries=0)
    listed = {m.id: m for m in client.models.list()}
    assert listed["sim"].owned_by == ProviderFactory._meta.model.objects.get(models__name="sim").name
    assert listed["sim"].orchestrator == {
        "available": True,
        "reason": None,
        "capabilities": ["tool_use", "vision"],
    }
    assert client.models.retrieve("needs-key").orchestrator["available"] is False
