"""instructor in its default mode (tool calling: the response model as a forced function tool)
against the live gateway, through a model, a route and a chain, plain and streamed."""

import instructor
import openai
import pytest
from pydantic import BaseModel

from gateway.services import api_key_create
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)

ASK = [{"role": "user", "content": "Ada Lovelace was 36. Extract the user."}]
ADA = {"name": "Ada Lovelace", "age": 36}


class UserInfo(BaseModel):
    name: str
    age: int


@pytest.fixture
def client(live_url) -> instructor.Instructor:
    raw = api_key_create(name="instructor")[1]
    return instructor.from_openai(
        openai.OpenAI(base_url=f"{live_url}/v1", api_key=raw, max_retries=0, timeout=20)
    )


@pytest.fixture
def target(request, fake_provider) -> str:
    model = fake_provider.model("alpha", capabilities=["tool_use"])
    if request.param == "route":
        TaskRouteFactory(task_type="extract", model=model)
        return "route:extract"
    if request.param == "chain":
        FallbackChainFactory(name="extractors", models=[model])
        return "chain:extractors"
    return "alpha"


@pytest.mark.parametrize("target", ["model", "route", "chain"], indirect=True)
def test_instructor_extracts_a_model_in_its_default_tool_mode(client, target, fake_provider):
    fake_provider.script("alpha", Reply.tool_call("UserInfo", ADA))
    user = client.chat.completions.create(model=target, messages=ASK, response_model=UserInfo, max_retries=0)
    assert isinstance(user, UserInfo) and user.model_dump() == ADA
    (received,) = fake_provider.requests_for("alpha")
    assert received.body["tools"][0]["function"]["name"] == "UserInfo"
    assert received.body["tool_choice"] == {"type": "function", "function": {"name": "UserInfo"}}


@pytest.mark.parametrize("target", ["model", "route"], indirect=True)
def test_instructor_streams_partial_objects_from_streamed_tool_calls(client, target, fake_provider):
    fake_provider.script("alpha", Reply.tool_call("UserInfo", ADA))
    partials = list(
        client.chat.completions.create_partial(
            model=target, messages=ASK, response_model=UserInfo, max_retries=0
        )
    )
    assert len(partials) > 1
    assert (partials[-1].name, partials[-1].age) == ("Ada Lovelace", 36)
    assert fake_provider.requests_for("alpha")[0].body["stream"] is True
