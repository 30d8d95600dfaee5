"""Simon Willison's `llm` CLI on the gateway, configured as its docs say for an
OpenAI-compatible server (`extra-openai-models.yaml`, the key in `keys.json`): `--functions`
runs the tool the model calls and prints the answer from its result, streamed (llm's default)
and with `--no-stream`, through a model, a `route:` and a `chain:` on the fake provider, and on
the shipped simulated models with no provider key."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.models import ApiKey
from gateway.services import api_key_create
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply
from tests.gateway.test_clients_defaults import defaults  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

FUNCTIONS = '''
def temperature_in(city: str) -> float:
    """The temperature in a city now, in degrees Celsius."""
    return 21.5
'''
TARGETS = ("model", "route", "chain")


@pytest.fixture
def key() -> tuple[ApiKey, str]:
    return api_key_create(name="app")


def llm_run(folder: Path, live_url: str, raw: str, target: str, *extra: str) -> str:
    """`llm -m orchestrator --functions … PROMPT` with `orchestrator` meaning `target` on the gateway."""
    (folder / "extra-openai-models.yaml").write_text(
        f"- model_id: orchestrator\n  model_name: '{target}'\n  api_base: '{live_url}/v1'\n"
        "  api_key_name: orchestrator\n  supports_tools: true\n  can_stream: true\n"
    )
    (folder / "keys.json").write_text(json.dumps({"orchestrator": raw}))
    done = subprocess.run(
        [sys.executable, "-m", "llm", "-m", "orchestrator", "--functions", FUNCTIONS, *extra]
        + ["What is the temperature in Paris?"],
        env={**os.environ, "LLM_USER_PATH": str(folder)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("mode", [(), ("--no-stream",)], ids=["streamed", "plain"])
@pytest.mark.parametrize("target", TARGETS)
def test_llm_functions_run_the_tool_and_answer_from_its_result(
    tmp_path, live_url, key, fake_provider, target, mode
):
    model = fake_provider.model("alpha", capabilities=["tool_use"])
    TaskRouteFactory(task_type="weather", model=model)
    FallbackChainFactory(name="weather", models=[model])
    fake_provider.script(
        "alpha",
        Reply.tool_call("temperature_in", {"city": "Paris"}, id="call_weather"),
        Reply.ok("It is 21.5 degrees in Paris."),
    )
    name = {"model": "alpha", "route": "route:weather", "chain": "chain:weather"}[target]

    out = llm_run(tmp_path, live_url, key[1], name, *mode)

    assert out == "It is 21.5 degrees in Paris."
    first, second = fake_provider.requests_for("alpha")
    assert first.body["tools"][0]["function"]["name"] == "temperature_in"
    assistant, result = second.body["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == result["tool_call_id"] == "call_weather"
    assert result["content"] == "21.5"
    assert all(r.body.get("stream", False) is (not mode) for r in (first, second))


def test_llm_functions_work_on_the_default_simulated_models(tmp_path, live_url, key, defaults):  # noqa: F811
    out = llm_run(tmp_path, live_url, key[1], defaults["chain"])

    assert "21.5" in out
