"""A fresh install (config/defaults.yaml as `make run` loads it) with no provider key at all:
through the gateway, the openai client and a pydantic-ai agent run an agent loop and a vision
request on the simulated models, and /v1/models says which entries can answer."""

import asyncio
import base64
import json
from pathlib import Path

import openai
import pytest
from django.conf import settings
from django.core.management import call_command
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from gateway.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)

DEFAULTS = Path(settings.BASE_DIR) / "config" / "defaults.yaml"
KEY_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "GEMINI_API_KEY")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture
def raw_key(monkeypatch) -> str:
    for name in KEY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    call_command("import_config", str(DEFAULTS), "--if-empty", "--brief")
    return api_key_create(name="fresh")[1]


@pytest.fixture
def client(live_url, raw_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key=raw_key, max_retries=0, timeout=30)


def test_the_model_list_says_the_keyed_models_wait_for_their_key(client):
    listed = {m.id: m.orchestrator for m in client.models.list()}
    assert listed["gpt-4o"]["available"] is False
    assert listed["gpt-4o"]["reason"] in {f"needs key: set {name}" for name in KEY_VARIABLES}
    assert listed["sim-smart"]["available"] and {"tool_use", "vision"} <= set(
        listed["sim-smart"]["capabilities"]
    )
    assert listed["chain:default"]["available"]


def test_an_agent_loop_runs_on_the_default_chain_with_no_keys(client):
    first = client.chat.completions.create(model="chain:default", messages=ASK, tools=[WEATHER_TOOL])
    assert first.model.startswith("sim-")
    (call,) = first.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    turn = [*ASK, first.choices[0].message.model_dump(exclude_none=True)]
    turn.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 °C"})
    with client.chat.completions.stream(model="chain:default", messages=turn, tools=[WEATHER_TOOL]) as stream:
        answer = stream.get_final_completion().choices[0]
    assert answer.finish_reason == "stop" and "sunny" in answer.message.content


def test_a_vision_request_goes_to_a_model_with_vision(client):
    png = base64.b64encode(
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6364f8cf50000003860180580af9d700000000"
            "49454e44ae426082"
        )
    ).decode()
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is in this image?"}, image]}]
    completion = client.chat.completions.create(model="chain:default", messages=messages)
    assert completion.model == "sim-smart"
    assert "PNG" in completion.choices[0].message.content


class Forecast(BaseModel):
    city: str
    weather: str


def test_a_pydantic_ai_agent_with_a_tool_runs_on_a_simulated_model(live_url, raw_key):
    provider = OpenAIProvider(base_url=f"{live_url}/v1", api_key=raw_key)
    agent = Agent(OpenAIChatModel("chain:default", provider=provider), output_type=Forecast, retries=0)
    looked_up: list[str] = []

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        looked_up.append(city)
        return "sunny"

    result = asyncio.run(agent.run("What is the weather in Paris?"))
    assert looked_up == ["Paris"]
    assert isinstance(result.output, Forecast) and result.output.city == "Paris"
