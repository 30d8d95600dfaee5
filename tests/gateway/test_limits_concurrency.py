"""Concurrent admissions never pass rpm, tpm or budget: across two processes sharing a real
Redis (the test's own redis-server), and in one process without Redis (`make run`).

The other process is a subprocess started at the same time as the test's own burst: each
side writes a ready file and waits for a go file, so both bursts start together."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync

from gateway.errors import GatewayError
from gateway.keys import KeyInfo
from gateway.limits import Admission, limits_account, limits_admit

BURST = 30

CHILD = r"""
import asyncio, json, os, sys, time
import django
django.setup()
from django.conf import settings
settings.CACHES = json.loads(os.environ["LIMITS_TEST_CACHES"])
from gateway.errors import GatewayError
from gateway.keys import KeyInfo
from gateway.limits import limits_admit
from decimal import Decimal

spec = json.loads(sys.argv[1])
info = KeyInfo(id=spec["id"], name="child", prefix="ork-x", budget_usd=None if spec["budget"] is None else Decimal(spec["budget"]),
               budget_period="day", rpm=spec["rpm"], tpm=spec["tpm"], allowed=frozenset())
ready, go = sys.argv[2], sys.argv[3]

async def one():
    try:
        admission = await limits_admit(info=info)
    except GatewayError:
        return 0
    return 1 if admission.checked else -1000

async def main():
    await limits_admit(info=KeyInfo(id=0, name="warm", prefix="", budget_usd=None, budget_period="day", rpm=1000, tpm=None, allowed=frozenset()))
    open(ready, "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(go):
        assert time.monotonic() < deadline, "never told to go"
        await asyncio.sleep(0.001)
    results = await asyncio.gather(*[one() for _ in range(int(sys.argv[4]))])
    print(json.dumps(sum(results)))

asyncio.run(main())
"""


def _info(key_id: int, *, rpm=None, tpm=None, budget=None) -> KeyInfo:
    return KeyInfo(
        id=key_id,
        name="parent",
        prefix="ork-x",
        budget_usd=None if budget is None else Decimal(budget),
        budget_period="day",
        rpm=rpm,
        tpm=tpm,
        allowed=frozenset(),
    )


async def _burst(info: KeyInfo, count: int) -> int:
    async def one() -> int:
        try:
            admission = await limits_admit(info=info)
        except GatewayError:
            return 0
        return 1 if admission.checked else -1000  # an unchecked admission must fail the test

    return sum(await asyncio.gather(*[one() for _ in range(count)]))


def _admitted_by_two_processes(tmp_path: Path, caches: dict, info: KeyInfo) -> int:
    ready, go = tmp_path / f"ready-{uuid.uuid4().hex}", tmp_path / f"go-{uuid.uuid4().hex}"
    spec = {
        "id": info.id,
        "rpm": info.rpm,
        "tpm": info.tpm,
        "budget": None if info.budget_usd is None else str(info.budget_usd),
    }
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "orchestrator_site.settings_test",
        "LIMITS_TEST_CACHES": json.dumps(caches),
        "ORCHESTRATOR_REDIS_TIMEOUT_MS": "2000",  # a loaded machine must not make it fail open
    }
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(spec), str(ready), str(go), str(BURST)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:

        async def together() -> int:
            await limits_admit(info=_info(0, rpm=1000))  # connect before the start line
            deadline = time.monotonic() + 60
            while not ready.exists():
                assert child.poll() is None, "the other process died"
                assert time.monotonic() < deadline, "the other process never got ready"
                await asyncio.sleep(0.005)
            go.touch()
            return await _burst(info, BURST)

        mine = async_to_sync(together)()
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    return mine + int(json.loads(out))


@pytest.fixture
def shared_redis(owned_redis, settings) -> dict:
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": owned_redis.url,
            "KEY_PREFIX": f"limits-{uuid.uuid4().hex[:8]}",
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    }
    settings.CACHES = caches
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "REDIS_TIMEOUT_MS": 2000}
    return caches


def _settle_one(info: KeyInfo, *, tokens: int, cost: str) -> None:
    admission = async_to_sync(limits_admit)(info=info)
    async_to_sync(limits_account)(info=info, admission=admission, tokens=tokens, cost_usd=Decimal(cost))


@pytest.mark.django_db
def test_two_processes_together_admit_exactly_the_rpm(tmp_path, shared_redis):
    info = _info(101, rpm=25)

    assert _admitted_by_two_processes(tmp_path, shared_redis, info) == 25


@pytest.mark.django_db
def test_two_processes_together_cannot_pass_the_budget_by_more_than_one_request(tmp_path, shared_redis):
    """$0.01 a day, calls of $0.001: once one call has settled (its cost is now the key's
    estimate), 60 concurrent requests from two processes get at most the 9 that fit."""
    info = _info(102, budget="0.01")
    _settle_one(info, tokens=10, cost="0.001")

    admitted = _admitted_by_two_processes(tmp_path, shared_redis, info)

    assert admitted == 9  # 0.001 spent + 9 × 0.001 reserved reaches the budget


@pytest.mark.django_db
def test_two_processes_together_cannot_pass_the_tpm_by_more_than_one_request(tmp_path, shared_redis):
    info = _info(103, tpm=1000)
    _settle_one(info, tokens=100, cost="0")

    admitted = _admitted_by_two_processes(tmp_path, shared_redis, info)

    assert admitted == 9  # 100 used + 9 × 100 reserved reaches 1000


@pytest.mark.django_db
def test_a_budget_keys_first_request_runs_alone_until_its_cost_is_known(shared_redis):
    info = _info(104, budget="0.01")

    async def first_burst_then_settle() -> tuple[int, int]:
        admissions: list[Admission] = []
        refused = 0
        for outcome in await asyncio.gather(
            *[limits_admit(info=info) for _ in range(20)], return_exceptions=True
        ):
            if isinstance(outcome, GatewayError):
                assert outcome.code == "budget_exceeded" and outcome.headers["retry-after"] == "1"
                refused += 1
            else:
                assert isinstance(outcome, Admission)
                admissions.append(outcome)
        for admission in admissions:
            await limits_account(info=info, admission=admission, tokens=5, cost_usd=Decimal("0.002"))
        return len(admissions), await _burst(info, 20)

    first, second = async_to_sync(first_burst_then_settle)()

    assert first == 1
    assert second == 4  # 0.002 spent + 4 × 0.002 reserved reaches 0.01


@pytest.mark.django_db
def test_without_redis_concurrent_threads_admit_exactly_the_limits(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "limits"}
    }
    rpm_key, budget_key = _info(105, rpm=25), _info(106, budget="0.01")
    _settle_one(budget_key, tokens=1, cost="0.001")
    admitted = {rpm_key.id: 0, budget_key.id: 0}
    lock, start = threading.Lock(), threading.Barrier(4)

    def worker(info: KeyInfo) -> None:
        start.wait()
        count = async_to_sync(_burst)(info, BURST)
        with lock:
            admitted[info.id] += count

    threads = [
        threading.Thread(target=worker, args=(info,)) for info in (rpm_key, rpm_key, budget_key, budget_key)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert admitted == {rpm_key.id: 25, budget_key.id: 9}
