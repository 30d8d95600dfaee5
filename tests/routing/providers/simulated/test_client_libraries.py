"""A simulated model behind the live gateway with no provider key anywhere, used by the client
libraries agents use on their default settings: instructor's tool mode, a pydantic-ai agent
with a tool and its output tool (plain and streamed), and a vision request from the openai SDK."""

from __future__ import annotations

import asyncio
import base64
import struct

import instructor
import openai
import pytest
from pydantic import BaseModel, Field
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from gateway.services import api_key_create
from tests.factories import ModelConfigFactory, ProviderFactory

pytestmark = pytest.mark.django_db(transaction=True)


class UserInfo(BaseModel):
    name: str
    age: int = Field(ge=0)


class Forecast(BaseModel):
    city: str
    sky: str


@pytest.fixture
def key(live_url) -> str:
    provider = ProviderFactory(name="sim-fresh", options={"latency_ms_mean": 0, "latency_ms_jitter": 0})
    ModelConfigFactory(name="sim-agent", provider=provider, capabilities=["tool_use", "vision"])
    return api_key_create(name="libraries")[1]


def openai_client(live_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key=key, max_retries=0, timeout=20)


def agent_for(live_url: str, key: str) -> Agent[None, Forecast]:
    provider = OpenAIProvider(base_url=f"{live_url}/v1", api_key=key)
    agent = Agent(OpenAIChatModel("sim-agent", provider=provider), output_type=Forecast, retries=0)

    @agent.tool_plain
    def get_weather(city: str) -> dict[str, str]:
        """The current sky over a city."""
        return {"city": city, "sky": "clear"}

    return agent


def test_instructor_extracts_a_model_in_its_default_tool_mode(live_url, key):
    client = instructor.from_openai(openai_client(live_url, key))

    user = client.chat.completions.create(
        model="sim-agent",
        messages=[{"role": "user", "content": "Ada Lovelace was 36. Extract the user."}],
        response_model=UserInfo,
        max_retries=0,
    )

    assert user.model_dump() == {"name": "Ada Lovelace", "age": 36}


def test_a_pydantic_ai_agent_calls_its_tool_then_returns_its_output_type(live_url, key):
    result = agent_for(live_url, key).run_sync("What is the weather in Paris?")

    assert result.output == Forecast(city="Paris", sky="clear")
    tool_calls = [p for m in result.all_messages() for p in m.parts if p.part_kind == "tool-call"]
    assert [c.tool_name for c in tool_calls] == ["get_weather", "final_result"]


def test_a_streamed_agent_run_gets_the_same_output(live_url, key):
    async def run() -> Forecast:
        async with agent_for(live_url, key).run_stream("What is the weather in Paris?") as streamed:
            return await streamed.get_output()

    assert asyncio.run(run()) == Forecast(city="Paris", sky="clear")


def test_an_image_gets_an_answer_that_describes_it(live_url, key):
    png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + struct.pack(">II", 640, 480) + b"\x08\x02\0\0\0" + b"\0" * 2000
    url = "data:image/png;base64," + base64.b64encode(png).decode()

    completion = openai_client(live_url, key).chat.completions.create(
        model="sim-agent",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this picture?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
    )

    assert completion.choices[0].message.content.startswith("You sent a 640×480 PNG (2 KB).")
