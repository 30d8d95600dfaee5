"""instructor in its default mode (tool calls: the pydantic model becomes a function tool the
model is told to call) against the live gateway, through a model, a `route:` and a `chain:`,
plain and streamed (`create_partial`), on the fake provider's OpenAI wire (the shipped
defaults' simulated models: test_clients_defaults.py).

The streamed tests pass `strict=False`: instructor validates the finished partial object from
Python values in strict mode, where an enum field refuses its own string value whatever the
server sent (plain `create` validates the JSON text, where strict mode takes it)."""

from enum import StrEnum

import instructor
import openai
import pytest
from pydantic import BaseModel

from gateway.models import ApiKey
from gateway.services import api_key_create
from metrics.models import CallRecord
from routing.orchestrator import records_flush
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)

TARGETS = ("model", "route", "chain")


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    urgent = "urgent"


class Address(BaseModel):
    city: str
    country: str


class Ticket(BaseModel):
    title: str
    priority: Priority
    tags: list[str]
    address: Address


TICKET = {
    "title": "Parcel lost",
    "priority": "urgent",
    "tags": ["shipping", "refund"],
    "address": {"city": "Lyon", "country": "France"},
}
ASK = [{"role": "user", "content": "My parcel to Lyon, France never arrived. Open a ticket."}]


@pytest.fixture
def key() -> tuple[ApiKey, str]:
    return api_key_create(name="app")


def instructor_for(live_url: str, raw: str) -> instructor.Instructor:
    client = openai.OpenAI(base_url=f"{live_url}/v1", api_key=raw, max_retries=0, timeout=20)
    return instructor.from_openai(client)  # the default mode: tools


@pytest.fixture
def fake_targets(fake_provider):
    """The three ways to name the fake model: itself, a route to it, a chain ending in it."""
    model = fake_provider.model("alpha", capabilities=["tool_use"])
    TaskRouteFactory(task_type="tickets", model=model)
    FallbackChainFactory(name="tickets", models=[model])
    return {"model": "alpha", "route": "route:tickets", "chain": "chain:tickets"}


@pytest.mark.parametrize("target", TARGETS)
def test_instructor_fills_a_nested_pydantic_model_from_a_tool_call(
    live_url, key, fake_provider, fake_targets, target
):
    fake_provider.script("alpha", Reply.tool_call("Ticket", TICKET))

    ticket = instructor_for(live_url, key[1]).chat.completions.create(
        model=fake_targets[target], messages=ASK, response_model=Ticket, max_retries=0
    )

    assert ticket.model_dump(mode="json") == TICKET
    (received,) = fake_provider.requests_for("alpha")
    (tool,) = received.body["tools"]
    assert tool["function"]["name"] == "Ticket"
    assert tool["function"]["parameters"]["properties"]["priority"]["$ref"] == "#/$defs/Priority"
    assert received.body["tool_choice"] == {"type": "function", "function": {"name": "Ticket"}}


@pytest.mark.parametrize("target", TARGETS)
def test_instructor_streams_partial_objects_that_end_complete(
    live_url, key, fake_provider, fake_targets, target
):
    fake_provider.script("alpha", Reply.tool_call("Ticket", TICKET))

    partials = list(
        instructor_for(live_url, key[1]).chat.completions.create_partial(
            model=fake_targets[target], messages=ASK, response_model=Ticket, max_retries=0, strict=False
        )
    )

    assert len(partials) > 1  # the arguments arrived in pieces
    assert Ticket.model_validate(partials[-1].model_dump()) == Ticket.model_validate(TICKET)
    (received,) = fake_provider.requests_for("alpha")
    assert received.body["stream"] is True


def test_instructor_calls_are_recorded_with_the_tool_call(live_url, key, fake_provider, fake_targets):
    fake_provider.script("alpha", Reply.tool_call("Ticket", TICKET))

    instructor_for(live_url, key[1]).chat.completions.create(
        model="alpha", messages=ASK, response_model=Ticket, max_retries=0
    )

    records_flush()
    (record,) = CallRecord.objects.filter(api_key=key[0])
    assert record.status == "ok"
    assert "Ticket" in record.response_text and "Lyon" in record.response_text
