"""The openai Node SDK on the gateway: its tool runner (`runTools`, plain and streamed) runs the
loop end to end through a model, a `route:` and a `chain:` on the fake provider, and on the
shipped simulated models with no keys. The SDK is installed from npm into a scratch folder
once per machine (`var/test-node`); with no node/npm, or no registry, these tests are skipped
with the reason."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from gateway.models import ApiKey
from gateway.services import api_key_create
from tests.factories import FallbackChainFactory, TaskRouteFactory
from tests.fake_provider import Reply
from tests.gateway.test_clients_defaults import defaults  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

OPENAI_NODE = "openai@7.59.0"
SCRIPT = Path(__file__).parent / "node" / "run_tools.mjs"
TARGETS = ("model", "route", "chain")


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    """A folder with the openai Node SDK installed, the script copied beside it."""
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are needed for the Node SDK tests")
    folder = Path(settings.BASE_DIR) / "var" / "test-node"
    folder.mkdir(parents=True, exist_ok=True)
    installed = folder / "node_modules" / "openai" / "package.json"
    wanted = OPENAI_NODE.split("@")[1]
    if not installed.exists() or json.loads(installed.read_text())["version"] != wanted:
        (folder / "package.json").write_text('{"private": true, "type": "module"}')
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", OPENAI_NODE],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            pytest.skip(f"npm could not install {OPENAI_NODE}: {done.stderr.strip()[-300:]}")
    shutil.copy(SCRIPT, folder / SCRIPT.name)
    return folder


def run_tools(folder: Path, live_url: str, raw: str, model: str, mode: str) -> dict:
    done = subprocess.run(
        ["node", SCRIPT.name, f"{live_url}/v1", raw, model, mode],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def key() -> tuple[ApiKey, str]:
    return api_key_create(name="app")


@pytest.mark.parametrize("mode", ["plain", "stream"])
@pytest.mark.parametrize("target", TARGETS)
def test_run_tools_runs_the_tool_and_answers_from_its_result(
    node_sdk, live_url, key, fake_provider, target, mode
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

    out = run_tools(node_sdk, live_url, key[1], name, mode)

    assert out == {"asked": ["Paris"], "content": "It is 21.5 degrees in Paris.", "messages": 4}
    first, second = fake_provider.requests_for("alpha")
    assert first.body["tools"][0]["function"]["name"] == "temperature_in"
    assistant, result = second.body["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == result["tool_call_id"] == "call_weather"
    assert json.loads(result["content"]) == {"city": "Paris", "celsius": 21.5}
    assert all(r.body.get("stream", False) is (mode == "stream") for r in (first, second))


@pytest.mark.parametrize("mode", ["plain", "stream"])
def test_run_tools_works_on_the_default_simulated_models(node_sdk, live_url, key, defaults, mode):  # noqa: F811
    out = run_tools(node_sdk, live_url, key[1], defaults["chain"], mode)

    assert out["asked"] == ["Paris"]
    assert "21.5" in out["content"]
