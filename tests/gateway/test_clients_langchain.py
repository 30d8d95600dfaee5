"""LangChain's ChatOpenAI pointed at the live gateway, on its default settings: `bind_tools`
(the call, the tool result sent back as a ToolMessage, the answer), the same loop streamed
(tool-call chunks assembled by LangChain), and `with_structured_output` (its default
json_schema method), through a model, a `route:` and a `chain:` on the fake provider's OpenAI
wire. This is the loop LangChain's agents run; an agent (`create_agent` with a tool and a
structured response) runs it too."""

import json

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr

from gateway.models import ApiKey
from gateway.services import api_key_create
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)

TARGETS = ("model", "route", "chain")


@tool
def temperature_in(city: str) -> float:
    """The temperature in a city now, in degrees Celsius."""
    return 21.5


class Forecast(BaseModel):
    city: str
    celsius: float


@pytest.fixture
def key() -> tuple[ApiKey, str]:
    return api_key_create(name="app")


@pytest.fixture
def fake_targets(fake_provider):
    model = fake_provider.model("alpha", capabilities=["tool_use"])
    TaskRouteFactory(task_type="weather", model=model)
    FallbackChainFactory(name="weather", models=[model])
    return {"model": "alpha", "route": "route:weather", "chain": "chain:weather"}


def chat_model(live_url: str, raw: str, target: str, **kwargs) -> ChatOpenAI:
    return ChatOpenAI(
        model=target, base_url=f"{live_url}/v1", api_key=SecretStr(raw), max_retries=0, timeout=20, **kwargs
    )


def tool_loop(llm, *, streamed: bool) -> tuple[list, str]:
    """What an agent does: ask, run the tools the model called, send the results, read the answer."""
    bound = llm.bind_tools([temperature_in])
    history: list = [HumanMessage("What is the temperature in Paris: do I need a coat?")]
    if streamed:
        chunks = list(bound.stream(history))
        first = sum(chunks[1:], chunks[0])  # LangChain adds message chunks into one message
    else:
        first = bound.invoke(history)
    history.append(first)
    for call in first.tool_calls:
        history.append(ToolMessage(str(temperature_in.invoke(call["args"])), tool_call_id=call["id"]))
    answer = bound.stream(history) if streamed else [bound.invoke(history)]
    return first.tool_calls, "".join(str(part.content) for part in answer)


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("target", TARGETS)
def test_bind_tools_runs_the_tool_loop_through_the_gateway(
    live_url, key, fake_provider, fake_targets, target, streamed
):
    fake_provider.script(
        "alpha",
        Reply.tool_call("temperature_in", {"city": "Paris"}, id="call_weather"),
        Reply.ok("21.5 degrees: no coat needed."),
    )

    calls, answer = tool_loop(chat_model(live_url, key[1], fake_targets[target]), streamed=streamed)

    assert [(c["name"], c["args"], c["id"]) for c in calls] == [
        ("temperature_in", {"city": "Paris"}, "call_weather")
    ]
    assert answer == "21.5 degrees: no coat needed."
    first, second = fake_provider.requests_for("alpha")
    assert [t["function"]["name"] for t in first.body["tools"]] == ["temperature_in"]
    assert first.body["tools"][0]["function"]["parameters"]["properties"] == {"city": {"type": "string"}}
    assistant, result = second.body["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == "call_weather"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert (result["role"], result["tool_call_id"], result["content"]) == ("tool", "call_weather", "21.5")
    assert all(r.body.get("stream", False) is streamed for r in (first, second))


@pytest.mark.parametrize("target", TARGETS)
def test_with_structured_output_gets_a_validated_object(live_url, key, fake_provider, fake_targets, target):
    fake_provider.script("alpha", Reply.ok(json.dumps({"city": "Paris", "celsius": 21.5})))

    forecast = (
        chat_model(live_url, key[1], fake_targets[target]).with_structured_output(Forecast).invoke("Paris?")
    )

    assert forecast == Forecast(city="Paris", celsius=21.5)
    (request,) = fake_provider.requests_for("alpha")
    assert request.body["response_format"]["type"] == "json_schema"
    assert request.body["response_format"]["json_schema"]["name"] == "Forecast"


def test_a_model_without_tool_use_is_refused_with_a_clear_error_langchain_raises(
    live_url, key, fake_provider
):
    fake_provider.model("plain")
    llm = chat_model(live_url, key[1], "plain").bind_tools([temperature_in])

    with pytest.raises(Exception) as raised:
        llm.invoke("Coat?")

    assert getattr(raised.value, "status_code", None) == 400
    assert "tool_use" in str(raised.value)
    assert fake_provider.requests_for("plain") == []


@pytest.mark.parametrize("target", TARGETS)
def test_a_langchain_agent_calls_its_tool_then_answers_with_a_structured_response(
    live_url, key, fake_provider, fake_targets, target
):
    fake_provider.script(
        "alpha",
        Reply.tool_call("temperature_in", {"city": "Paris"}, id="call_weather"),
        Reply.tool_call("Forecast", {"city": "Paris", "celsius": 21.5}, id="call_out"),  # its output tool
    )
    agent = create_agent(
        chat_model(live_url, key[1], fake_targets[target]), [temperature_in], response_format=Forecast
    )

    state = agent.invoke({"messages": [HumanMessage("What is the temperature in Paris?")]})

    assert state["structured_response"] == Forecast(city="Paris", celsius=21.5)
    first, second = fake_provider.requests_for("alpha")
    assert [t["function"]["name"] for t in first.body["tools"]] == ["temperature_in", "Forecast"]
    assert first.body["tool_choice"] == "required"
    assert second.body["messages"][-1] == {"role": "tool", "tool_call_id": "call_weather", "content": "21.5"}
