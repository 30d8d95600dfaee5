"""A stalled Redis and an unavailable PostgreSQL do not stop the gateway (issue 11, items 1, 4).

Each test owns the server it breaks (tests/owned_services.py): a redis-server frozen with
SIGSTOP, a throwaway PostgreSQL cluster stopped or frozen, always resumed in a `finally`.
Requests go through the real gateway (uvicorn serving the ASGI app) with the `openai`
client; its timeout is the bound: a request that waited for the stalled server would not be
answered before the test resumes it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import openai
import psycopg
import pytest

from gateway.services import api_key_create
from metrics.models import CallRecord
from orchestrator_site.env import redis_cache
from routing import orchestrator
from routing.orchestrator import records_flush
from tests.owned_services import free_port

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "hello there"}]
BOUND_S = 5.0  # each request's own timeout; the stall lasts until every request has an answer


@pytest.fixture
def stallable_redis(owned_redis, settings):
    """The app's cache on the test's own redis-server, configured as settings.py does."""
    settings.CACHES = {"default": {**redis_cache(owned_redis.url, timeout_ms=250), "KEY_PREFIX": "stall"}}
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "REDIS_TIMEOUT_MS": 250, "REDIS_RETRY_S": 1}
    return owned_redis


def test_a_stalled_redis_neither_blocks_nor_fails_gateway_or_engine_calls(
    live_url, fake_provider, stallable_redis
):
    fake_provider.model("alpha", input_cost_per_1k=Decimal("1"), output_cost_per_1k=Decimal("1"))
    _, raw = api_key_create(name="limited", rpm=1000, tpm=1_000_000, budget_usd=Decimal("100"))
    client = openai.OpenAI(base_url=f"{live_url}/v1", api_key=raw, max_retries=0, timeout=BOUND_S)
    client.chat.completions.create(model="alpha", messages=HELLO)  # warm: counters live in Redis
    before = CallRecord.objects.count()

    stallable_redis.pause()
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda _: client.chat.completions.create(model="alpha", messages=HELLO), range(24))
            )
            # The engine's own API in this process: bounded the same way.
            direct = pool.submit(orchestrator.complete, HELLO, model="alpha").result(timeout=BOUND_S)
    finally:
        stallable_redis.resume()

    assert [a.choices[0].message.content for a in answers] == ["Echo: hello there"] * 24
    assert direct.text == "Echo: hello there"
    records_flush()
    assert CallRecord.objects.count() == before + 25


SETUP = r"""
import json, sys
import django
django.setup()
from decimal import Decimal
from django.core.management import call_command
call_command("migrate", verbosity=0)
from gateway.services import api_key_create
from routing.models import ModelConfig, Provider
fake = Provider.objects.create(
    name="fake", kind="openai", base_url=sys.argv[1] + "/v1", api_key_env="FAKE_PROVIDER_API_KEY", options={}
)
ModelConfig.objects.create(
    name="alpha", provider=fake, model_id="alpha",
    input_cost_per_1k=Decimal("0.001"), output_cost_per_1k=Decimal("0.002"),
)
print(json.dumps([api_key_create(name="known")[1], api_key_create(name="never-seen")[1]]))
"""


def _post(url: str, raw: str) -> tuple[int, dict, dict]:
    body = json.dumps({"model": "alpha", "messages": HELLO}).encode()
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=body,
        headers={"authorization": f"Bearer {raw}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=BOUND_S) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def _records(cluster) -> int:
    """Call records in the cluster; -1 while it does not accept connections yet (a server just
    resumed can still answer "the database system is starting up")."""
    try:
        with psycopg.connect(cluster.url.replace("postgres://", "postgresql://"), connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM metrics_callrecord").fetchone()
    except psycopg.OperationalError:
        return -1
    assert row is not None
    return int(row[0])


@pytest.mark.django_db
def test_a_database_outage_serves_known_keys_and_answers_503_for_unseen_ones(
    owned_postgres, fake_provider, tmp_path
):
    """The gateway (uvicorn, its own process) on the test's own PostgreSQL, which is first
    stopped, then started again, then frozen with SIGSTOP. Keys are re-read on every request
    (GATEWAY_KEY_CACHE_S=0), so every request during the outage needs the stale cache."""
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "orchestrator_site.settings",
        "DATABASE_URL": owned_postgres.url,
        "ORCHESTRATOR_VAR_DIR": str(tmp_path / "var"),
        "ORCHESTRATOR_GATEWAY_KEY_CACHE_S": "0",
        "ORCHESTRATOR_GATEWAY_KEY_DB_TIMEOUT_S": "1",
        "HTTPS": "false",
        "SECRET_KEY": "outage-test",
    }
    env.pop("REDIS_URL", None)
    env.pop("ORCHESTRATOR_TESTING", None)
    setup = subprocess.run(
        [sys.executable, "-c", SETUP, fake_provider.url],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert setup.returncode == 0, setup.stderr
    known, unseen = json.loads(setup.stdout.strip().splitlines()[-1])
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "orchestrator_site.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "server.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert _post(url, known)[0] == 200  # the known key is now in the cache
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the gateway never started"
                time.sleep(0.1)

        served: list[tuple[int, dict, dict]] = []
        refused: list[tuple[int, dict, dict]] = []
        owned_postgres.stop()
        try:
            served += [_post(url, known) for _ in range(5)]
            refused.append(_post(url, unseen))
        finally:
            owned_postgres.start()
        owned_postgres.pause()
        try:
            served += [_post(url, known) for _ in range(5)]
            refused.append(_post(url, unseen))
        finally:
            owned_postgres.resume()

        assert [status for status, _, _ in served] == [200] * 10
        for status, headers, body in refused:
            assert status == 503
            assert headers["retry-after"] == "5"
            assert set(body["error"]) == {"message", "type", "param", "code"}
            assert body["error"]["code"] == "service_unavailable"
        # Every served call is recorded once the database is back (the writer retries).
        deadline = time.monotonic() + 60
        while _records(owned_postgres) < 11:
            assert time.monotonic() < deadline, f"{_records(owned_postgres)} of 11 calls recorded"
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(20)
