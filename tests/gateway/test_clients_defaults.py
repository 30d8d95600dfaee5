"""Client libraries on a fresh install: the shipped defaults with no provider key at all, so
the simulated models answer, through a model, a `route:` and a `chain:` (whose first steps need
keys and are skipped), plain and streamed: instructor in its default tool mode (the simulated
model calls the tool it is told to with arguments built from its schema, so the object with a
nested object, a list and an enum validates), and a pydantic-ai agent whose loop runs its tool
once, then answers through its default output tool; LangChain's `bind_tools` loop likewise."""

from pathlib import Path

import pytest
from django.conf import settings
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from gateway.models import ApiKey
from gateway.services import api_key_create
from routing.config_io import config_import
from tests.gateway.test_clients_instructor import ASK, TARGETS, Address, Priority, Ticket, instructor_for
from tests.gateway.test_clients_langchain import Forecast as Reading
from tests.gateway.test_clients_langchain import chat_model, temperature_in, tool_loop

pytestmark = pytest.mark.django_db(transaction=True)

PROVIDER_KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "GEMINI_API_KEY")


@pytest.fixture
def key() -> tuple[ApiKey, str]:
    return api_key_create(name="app")


@pytest.fixture
def defaults(monkeypatch):
    """The shipped defaults on a fresh install: no provider key, so the simulated models answer."""
    for variable in PROVIDER_KEY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    config_import(text=(Path(settings.BASE_DIR) / "config" / "defaults.yaml").read_text())
    return {"model": "sim-smart", "route": "route:summarization", "chain": "chain:fast"}


@pytest.mark.parametrize("target", TARGETS)
def test_instructor_gets_a_valid_object_from_the_default_simulated_models(live_url, key, defaults, target):
    ticket = instructor_for(live_url, key[1]).chat.completions.create(
        model=defaults[target], messages=ASK, response_model=Ticket, max_retries=0
    )

    assert isinstance(ticket, Ticket)
    assert isinstance(ticket.priority, Priority) and isinstance(ticket.address, Address)


@pytest.mark.parametrize("target", TARGETS)
def test_instructor_streams_a_valid_object_from_the_default_simulated_models(live_url, key, defaults, target):
    partials = list(
        instructor_for(live_url, key[1]).chat.completions.create_partial(
            model=defaults[target], messages=ASK, response_model=Ticket, max_retries=0, strict=False
        )
    )

    ticket = Ticket.model_validate(partials[-1].model_dump())
    assert isinstance(ticket.priority, Priority) and isinstance(ticket.tags, list)


class Forecast(BaseModel):
    city: str
    sky: str


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
def test_a_pydantic_ai_agent_runs_its_loop_on_the_default_simulated_models(
    live_url, key, defaults, target, streamed
):
    provider = OpenAIProvider(base_url=f"{live_url}/v1", api_key=key[1])
    agent = Agent(OpenAIChatModel(defaults[target], provider=provider), output_type=Forecast, retries=0)
    asked: list[str] = []

    @agent.tool_plain
    def get_weather(city: str) -> dict[str, str]:
        """The current sky over a city."""
        asked.append(city)
        return {"city": city, "sky": "clear"}

    prompt = "What is the weather in Paris?"
    output = agent.run_stream_sync(prompt).get_output() if streamed else agent.run_sync(prompt).output

    assert len(asked) == 1
    assert isinstance(output, Forecast)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "streamed"])
def test_langchain_bind_tools_runs_the_tool_loop_on_the_default_simulated_models(
    live_url, key, defaults, target, streamed
):
    llm = chat_model(live_url, key[1], defaults[target])

    calls, answer = tool_loop(llm, streamed=streamed)

    assert [c["name"] for c in calls] == ["temperature_in"]
    assert isinstance(calls[0]["args"].get("city"), str)
    assert "21.5" in answer  # the simulated model answers from the tool's result


@pytest.mark.parametrize("target", TARGETS)
def test_a_langchain_agent_answers_with_a_structured_response_on_the_default_simulated_models(
    live_url, key, defaults, target
):
    agent = create_agent(
        chat_model(live_url, key[1], defaults[target]), [temperature_in], response_format=Reading
    )

    state = agent.invoke({"messages": [HumanMessage("What is the temperature in Paris?")]})

    forecast = state["structured_response"]
    assert isinstance(forecast, Reading) and forecast.city == "Paris"
    assert forecast.celsius == 21.5  # filled from the tool's result
