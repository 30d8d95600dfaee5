"""Stored responses: GET and DELETE /v1/responses/{id} with the official `openai` client, owned
by the key that made them, gone once expired (purged on read, by the command and by the
periodic task), and what `store: false` keeps (nothing). Runs on PostgreSQL too."""

from datetime import timedelta

import httpx
import openai
import pytest
from django.core.management import call_command
from django.utils import timezone

from gateway.models import StoredResponse
from gateway.responses.store import stored_responses_purge
from gateway.services import api_key_create
from gateway.tasks import responses_purge
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alpha(fake_provider):
    return fake_provider.model("alpha")


def client_for(live_url: str, raw: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key=raw, max_retries=0, timeout=20)


@pytest.fixture
def owner(live_url) -> openai.OpenAI:
    return client_for(live_url, api_key_create(name="owner")[1])


@pytest.fixture
def outsider(live_url) -> openai.OpenAI:
    return client_for(live_url, api_key_create(name="outsider")[1])


def expire(response_id: str) -> None:
    StoredResponse.objects.filter(pk=response_id).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_a_stored_response_can_be_read_back_as_it_was_answered(owner, alpha, fake_provider):
    fake_provider.script("alpha", Reply.ok("Stored answer."))
    created = owner.responses.create(model="alpha", input="Keep this.", metadata={"ticket": "42"})

    fetched = owner.responses.retrieve(created.id)

    assert fetched.model_dump() == created.model_dump()
    assert (fetched.output_text, fetched.metadata, fetched.store) == (
        "Stored answer.",
        {"ticket": "42"},
        True,
    )
    row = StoredResponse.objects.get(pk=created.id)
    assert row.conversation == [
        {"role": "user", "content": "Keep this."},
        {"role": "assistant", "content": "Stored answer."},
    ]


def test_a_streamed_response_is_stored_when_it_completes(owner, alpha, fake_provider):
    with owner.responses.stream(model="alpha", input="Stream and keep.") as stream:
        final = stream.get_final_response()

    assert owner.responses.retrieve(final.id).output_text == final.output_text == "Echo: Stream and keep."


def test_a_stored_response_is_kept_for_the_configured_time(owner, alpha, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RESPONSES_TTL_S": 3600}
    created = owner.responses.create(model="alpha", input="An hour.")
    row = StoredResponse.objects.get(pk=created.id)
    assert row.expires_at - row.created_at == timedelta(hours=1)


def test_delete_removes_it_and_answers_openais_deleted_object(live_url, alpha):
    raw = api_key_create(name="owner")[1]
    created = client_for(live_url, raw).responses.create(model="alpha", input="Forget this.")
    headers = {"authorization": f"Bearer {raw}"}

    deleted = httpx.delete(f"{live_url}/v1/responses/{created.id}", headers=headers)

    assert deleted.status_code == 200
    assert deleted.json() == {"id": created.id, "object": "response", "deleted": True}
    assert not StoredResponse.objects.exists()
    with pytest.raises(openai.NotFoundError):
        client_for(live_url, raw).responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client_for(live_url, raw).responses.delete(created.id)


def test_the_sdks_delete_succeeds(owner, alpha):
    created = owner.responses.create(model="alpha", input="Forget this too.")
    owner.responses.delete(created.id)
    assert not StoredResponse.objects.filter(pk=created.id).exists()


def test_another_key_cannot_read_delete_or_continue_it(owner, outsider, alpha):
    created = owner.responses.create(model="alpha", input="Mine.")

    with pytest.raises(openai.NotFoundError) as read:
        outsider.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        outsider.responses.delete(created.id)
    with pytest.raises(openai.BadRequestError) as continued:
        outsider.responses.create(model="alpha", input="Yours?", previous_response_id=created.id)

    assert created.id in read.value.message
    assert continued.value.body["param"] == "previous_response_id"
    assert owner.responses.retrieve(created.id).id == created.id


def test_store_false_keeps_nothing(owner, alpha):
    created = owner.responses.create(model="alpha", input="Ephemeral.", store=False)

    assert created.store is False
    assert not StoredResponse.objects.exists()
    with pytest.raises(openai.NotFoundError):
        owner.responses.retrieve(created.id)


def test_an_expired_response_is_gone_and_purged_on_read(owner, alpha):
    created = owner.responses.create(model="alpha", input="Short-lived.")
    expire(created.id)

    with pytest.raises(openai.NotFoundError):
        owner.responses.retrieve(created.id)
    assert not StoredResponse.objects.filter(pk=created.id).exists()


def test_an_expired_previous_response_is_a_400_naming_it(owner, alpha):
    created = owner.responses.create(model="alpha", input="Short-lived.")
    expire(created.id)

    with pytest.raises(openai.BadRequestError) as error:
        owner.responses.create(model="alpha", input="Go on.", previous_response_id=created.id)

    assert (error.value.body["param"], error.value.body["code"]) == (
        "previous_response_id",
        "previous_response_not_found",
    )


def test_an_unknown_previous_response_is_a_400_before_any_model_is_called(owner, alpha, fake_provider):
    with pytest.raises(openai.BadRequestError) as error:
        owner.responses.create(model="alpha", input="Go on.", previous_response_id="resp_nope")
    assert "resp_nope" in error.value.message
    assert not fake_provider.requests_for("alpha")


def test_the_purge_command_and_task_delete_only_expired_responses(owner, alpha):
    kept = owner.responses.create(model="alpha", input="Keep.")
    gone = owner.responses.create(model="alpha", input="Go.")
    later = owner.responses.create(model="alpha", input="Go later.")
    expire(gone.id)

    call_command("purge_responses")
    assert set(StoredResponse.objects.values_list("pk", flat=True)) == {kept.id, later.id}

    expire(later.id)
    assert responses_purge.apply().get() == {"deleted": 1}
    assert list(StoredResponse.objects.values_list("pk", flat=True)) == [kept.id]
    assert stored_responses_purge() == 0


def test_an_unknown_id_is_a_404_in_openais_shape(live_url, alpha):
    raw = api_key_create(name="owner")[1]
    response = httpx.get(f"{live_url}/v1/responses/resp_missing", headers={"authorization": f"Bearer {raw}"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_another_method_on_a_stored_response_is_405(live_url):
    raw = api_key_create(name="owner")[1]
    response = httpx.put(f"{live_url}/v1/responses/resp_x", headers={"authorization": f"Bearer {raw}"})
    assert (response.status_code, response.headers["allow"]) == (405, "GET, DELETE")


def test_reading_a_stored_response_needs_a_key(live_url):
    assert httpx.get(f"{live_url}/v1/responses/resp_x").status_code == 401


def test_listing_input_items_is_a_404_saying_what_is_served(live_url):
    raw = api_key_create(name="owner")[1]
    response = httpx.get(
        f"{live_url}/v1/responses/resp_x/input_items", headers={"authorization": f"Bearer {raw}"}
    )
    assert (response.status_code, response.json()["error"]["code"]) == (404, "unknown_url")
