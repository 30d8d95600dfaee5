"""A pydantic-ai Agent with one tool and its default structured output (an output tool the model
calls with the answer) on the OpenAI-compatible provider pointed at the live gateway: the agent
loop (tool call, tool result, final answer) runs end to end through a model, a `route:` and a
`chain:`, plain and streamed, on the fake provider's OpenAI wire."""

import json

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from gateway.models import ApiKey
from gateway.services import api_key_create
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)

TARGETS = ("model", "route", "chain")


class Forecast(BaseModel):
    city: str
    celsius: float
    advice: str


@pytest.fixture
def key() -> tuple[ApiKey, str]:
    return api_key_create(name="app")


@pytest.fixture
def fake_targets(fake_provider):
    model = fake_provider.model("alpha", capabilities=["tool_use"])
    TaskRouteFactory(task_type="weather", model=model)
    FallbackChainFactory(name="weather", models=[model])
    return {"model": "alpha", "route": "route:weather", "chain": "chain:weather"}


def weather_agent(live_url: str, raw: str, target: str) -> tuple[Agent[None, Forecast], list[str]]:
    provider = OpenAIProvider(base_url=f"{live_url}/v1", api_key=raw)
    agent = Agent(OpenAIChatModel(target, provider=provider), output_type=Forecast, retries=0)
    asked: list[str] = []

    @agent.tool_plain
    def temperature_in(city: str) -> float:
        """The temperature in a city now, in degrees Celsius."""
        asked.append(city)
        return 21.5

    return agent, asked


def script_the_loop(fake_provider) -> None:
    fake_provider.script(
        "alpha",
        Reply.tool_call("temperature_in", {"city": "Paris"}, id="call_weather"),
        Reply.tool_call(
            "final_result", {"city": "Paris", "celsius": 21.5, "advice": "No coat needed."}, id="call_out"
        ),
    )


def assert_the_tool_result_went_back(fake_provider) -> None:
    first, second = fake_provider.requests_for("alpha")
    offered = {tool["function"]["name"] for tool in first.body["tools"]}
    assert offered == {"temperature_in", "final_result"}
    assistant, tool = second.body["messages"][-2:]
    assert assistant["role"] == "assistant"
    (call,) = assistant["tool_calls"]
    assert (call["id"], call["function"]["name"]) == ("call_weather", "temperature_in")
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert (tool["role"], tool["tool_call_id"]) == ("tool", "call_weather")
    assert "21.5" in json.dumps(tool["content"])


@pytest.mark.parametrize("target", TARGETS)
def test_an_agent_calls_its_tool_then_answers_with_a_valid_output(
    live_url, key, fake_provider, fake_targets, target
):
    script_the_loop(fake_provider)
    agent, asked = weather_agent(live_url, key[1], fake_targets[target])

    result = agent.run_sync("Do I need a coat in Paris?")

    assert asked == ["Paris"]
    assert result.output == Forecast(city="Paris", celsius=21.5, advice="No coat needed.")
    assert_the_tool_result_went_back(fake_provider)


@pytest.mark.parametrize("target", TARGETS)
def test_a_streamed_agent_run_calls_its_tool_then_answers_with_a_valid_output(
    live_url, key, fake_provider, fake_targets, target
):
    script_the_loop(fake_provider)
    agent, asked = weather_agent(live_url, key[1], fake_targets[target])

    result = agent.run_stream_sync("Do I need a coat in Paris?")
    output = result.get_output()

    assert asked == ["Paris"]
    assert output == Forecast(city="Paris", celsius=21.5, advice="No coat needed.")
    assert_the_tool_result_went_back(fake_provider)
    assert all(r.body.get("stream") is True for r in fake_provider.requests_for("alpha"))
