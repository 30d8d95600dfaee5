"""A pydantic-ai agent with a tool and its default structured output (an output tool) against
the live gateway, through a model, a route and a chain, plain and streamed: the agent loop
(call → tool result → final answer) runs through the gateway."""

import asyncio

import pytest
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from gateway.services import api_key_create
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)


class Forecast(BaseModel):
    city: str
    sky: str


def agent_for(live_url: str, target: str) -> Agent[None, Forecast]:
    provider = OpenAIProvider(base_url=f"{live_url}/v1", api_key=api_key_create(name="agent")[1])
    agent = Agent(OpenAIChatModel(target, provider=provider), output_type=Forecast, retries=0)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The current sky over a city."""
        return f"clear skies over {city}"

    return agent


@pytest.fixture
def target(request, fake_provider) -> str:
    model = fake_provider.model("alpha", capabilities=["tool_use"])
    if request.param == "route":
        TaskRouteFactory(task_type="weather", model=model)
        return "route:weather"
    if request.param == "chain":
        FallbackChainFactory(name="forecasters", models=[model])
        return "chain:forecasters"
    return "alpha"


def _script(fake_provider) -> None:
    fake_provider.script(
        "alpha",
        Reply.tool_call("get_weather", {"city": "Paris"}, id="call_w"),
        Reply.tool_call("final_result", {"city": "Paris", "sky": "clear"}, id="call_f"),
    )


@pytest.mark.parametrize("target", ["model", "route", "chain"], indirect=True)
def test_an_agent_calls_its_tool_then_answers_with_its_output_type(live_url, target, fake_provider):
    _script(fake_provider)
    result = agent_for(live_url, target).run_sync("What is the weather in Paris?")
    assert result.output == Forecast(city="Paris", sky="clear")
    first, second = fake_provider.requests_for("alpha")
    assert {t["function"]["name"] for t in first.body["tools"]} == {"get_weather", "final_result"}
    tool_turn = second.body["messages"][-1]
    assert (tool_turn["role"], tool_turn["tool_call_id"]) == ("tool", "call_w")
    assert "clear skies over Paris" in tool_turn["content"]


@pytest.mark.parametrize("target", ["model", "chain"], indirect=True)
def test_a_streamed_agent_run_gets_the_same_output(live_url, target, fake_provider):
    _script(fake_provider)

    async def run() -> Forecast:
        async with agent_for(live_url, target).run_stream("What is the weather in Paris?") as streamed:
            return await streamed.get_output()

    assert asyncio.run(run()) == Forecast(city="Paris", sky="clear")
    assert all(r.body["stream"] for r in fake_provider.requests_for("alpha"))
