"""Engine overhead and consensus wall time, each against a baseline measured in the same run.

    python -m bench engine [--quick] [--calls=N]

1. Overhead per call: the same chat completion to the fake provider server (its own
   process, on loopback, answering at once) made (a) directly with the `openai` SDK's async
   client and (b) through `orchestrator.acomplete(model=...)` with recording on (records
   buffered and bulk-written by the background writer, as in production). Calls alternate
   in blocks so drift hits both sides alike. Reports p50/p99 of each, the difference
   ("added") and the ratio. Goal (issue 3): added ≤ 1 ms at p50.
2. Consensus of 3 simulated members answering in 100, 200 and 300 ms: wall time of
   `aconsensus` against the slowest member's own latency in the same call. Goal: within 5%.

Runs on a scratch SQLite database in a temporary directory (migrated first) with the
local-memory cache, so it touches no real data. Benchmarks report; they never fail on a number.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench._support import FAKE_KEY, FAKE_KEY_ENV, fake_model_create, setup_django
from bench._support import free_port as _free_port
from bench._support import start_fake_server as _start_fake_server

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = [{"role": "user", "content": "Summarise the benefits of connection pooling in one line."}]


def _config(fake_url: str) -> None:
    from decimal import Decimal

    from routing.models import ModelConfig, Provider

    fake_model_create(fake_url)
    for latency in (100, 200, 300):
        sim = Provider.objects.create(
            name=f"sim-{latency}",
            kind="simulated",
            options={"latency_ms_mean": latency, "latency_ms_jitter": 0},
        )
        ModelConfig.objects.create(
            name=f"sim-{latency}ms",
            provider=sim,
            model_id=f"sim-{latency}",
            input_cost_per_1k=Decimal("0"),
            output_cost_per_1k=Decimal("0"),
        )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _overhead(fake_url: str, calls: int) -> dict[str, list[float]]:
    from openai import AsyncOpenAI

    from routing import orchestrator
    from routing.providers.base import ProviderRequest, ProviderSpec
    from routing.providers.registry import client_for

    raw = AsyncOpenAI(base_url=f"{fake_url}/v1", api_key=FAKE_KEY, max_retries=0, timeout=30)
    spec = ProviderSpec(
        name="fake-direct", kind="openai", base_url=f"{fake_url}/v1", api_key_env=FAKE_KEY_ENV
    )
    ours = client_for(spec)  # the very SDK client setup the engine uses, called without the engine

    async def sdk() -> float:
        t0 = time.perf_counter()
        await raw.chat.completions.create(model="bench-model", messages=MESSAGES)  # type: ignore[arg-type]
        return (time.perf_counter() - t0) * 1000.0

    async def client() -> float:
        t0 = time.perf_counter()
        await ours.complete(ProviderRequest(model_id="bench-model", messages=MESSAGES, timeout_s=30))
        return (time.perf_counter() - t0) * 1000.0

    async def engine() -> float:
        t0 = time.perf_counter()
        await orchestrator.acomplete(MESSAGES, model="bench-model")
        return (time.perf_counter() - t0) * 1000.0

    sides = {"sdk": sdk, "client": client, "engine": engine}
    for _ in range(50):  # warm-up: connections, snapshot, imports
        for run in sides.values():
            await run()
    times: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    for i in range(calls):
        # Rotate the order each round so no side always runs first (or after the writer wakes).
        for name in order[i % 3 :] + order[: i % 3]:
            times[name].append(await sides[name]())
    await raw.close()
    await orchestrator.arecords_flush()
    return times


async def _consensus(rounds: int) -> list[tuple[float, float]]:
    from routing import orchestrator

    members = ["sim-100ms", "sim-200ms", "sim-300ms"]
    await orchestrator.aconsensus(MESSAGES, models=members)  # warm-up
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        result = await orchestrator.aconsensus(MESSAGES, models=members, aggregator="majority")
        wall = (time.perf_counter() - t0) * 1000.0
        slowest = max(m.result.latency_ms for m in result.members if m.result is not None)
        out.append((wall, slowest))
    await orchestrator.arecords_flush()
    return out


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    calls = 300 if quick else 2000
    for arg in argv:
        if arg.startswith("--calls="):
            calls = int(arg.split("=", 1)[1])
    rounds = 5 if quick else 20

    with tempfile.TemporaryDirectory(prefix="bench-engine-") as var_dir:
        port = _free_port()
        server = _start_fake_server(port)
        try:
            fake_url = f"http://127.0.0.1:{port}"
            setup_django(var_dir)
            _config(fake_url)
            from metrics.models import CallRecord

            before = CallRecord.objects.count()
            times = asyncio.run(_overhead(fake_url, calls))
            recorded = CallRecord.objects.count() - before
            consensus = asyncio.run(_consensus(rounds))
        finally:
            server.terminate()
            server.wait(10)

    print(f"Engine overhead per call ({calls} calls per side, interleaved, recording on)")
    print(f"  {'':34}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    labels = {
        "sdk": "openai.AsyncOpenAI (defaults)",
        "client": "provider client (engine's SDK)",
        "engine": "orchestrator.acomplete",
    }
    for name, label in labels.items():
        v = times[name]
        print(f"  {label:34}{_pct(v, 0.5):>9.3f}{_pct(v, 0.99):>9.3f}{statistics.fmean(v):>9.3f}")
    for base in ("client", "sdk"):
        b, e = times[base], times["engine"]
        print(
            f"  engine vs {base:7}: added p50 {_pct(e, 0.5) - _pct(b, 0.5):+.3f} ms, "
            f"p99 {_pct(e, 0.99) - _pct(b, 0.99):+.3f} ms; ratio p50 {_pct(e, 0.5) / _pct(b, 0.5):.3f}x, "
            f"p99 {_pct(e, 0.99) / _pct(b, 0.99):.3f}x"
        )
    print("  (goal: added <= 1 ms at p50)")
    print(f"  call records written: {recorded} (engine calls incl. 50 warm-up: {calls + 50})")

    walls = [w for w, _ in consensus]
    ratios = [w / s for w, s in consensus]
    print(f"\nConsensus of 3 simulated members (100/200/300 ms), {rounds} rounds")
    print(
        f"  wall p50 {statistics.median(walls):.1f} ms; slowest member p50 {statistics.median(s for _, s in consensus):.1f} ms"
    )
    print(
        f"  wall/slowest ratio: p50 {statistics.median(ratios):.3f}, max {max(ratios):.3f}"
        f"   (goal: <= 1.05; a sequential run would be ~2.0)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
