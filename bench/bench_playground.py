"""Playground streaming: what the browser waits for, against baselines measured side by side.

    python -m bench playground [--quick] [--samples=N]

1. Time to first token. The same streamed chat completion from the fake provider server
   (its own process, on loopback, first token at once) taken (a) directly with the `openai`
   SDK's async client, stream=True, until the first content chunk, and (b) through the
   playground: GET /playground/runs/<id>/columns/0/stream on the real ASGI app under
   uvicorn in its own process (logged-in session, the column claimed, the engine's astream, the call recorded)
   until the first `event: delta` arrives. Samples alternate; reports p50/p90, added ms and
   the ratio. Goal (issue 4): ≤ 20 ms added.
2. Concurrency. Three simulated models answering in 300, 400 and 500 ms, each streamed
   alone through the playground, then all three at once (as the page does). Reports the
   concurrent wall time against the slowest alone. Goal: within 10%.

Scratch SQLite database in a temporary directory, local-memory cache: touches no real data.
Benchmarks report; they never fail on a number.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._support import FAKE_KEY, fake_model_create, setup_django
from bench._support import free_port as _free_port
from bench._support import start_fake_server as _start_fake_server
from bench._support import wait_port as _wait_port

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Summarise the benefits of connection pooling in one line."


def _config(fake_url: str) -> tuple[Any, str]:
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.test import Client

    from routing.models import ModelConfig, Provider

    fake_model_create(fake_url)
    for latency in (300, 400, 500):
        sim = Provider.objects.create(
            name=f"sim-{latency}",
            kind="simulated",
            options={
                "latency_ms_mean": latency,
                "latency_ms_jitter": 0,
                "ttft_ms": latency * 0.3,
                # the rest of the latency spread over the ~40 words of a simulated answer
                "tokens_per_second": 40 / (latency * 0.7 / 1000),
            },
        )
        ModelConfig.objects.create(
            name=f"sim-{latency}ms",
            provider=sim,
            model_id=f"sim-{latency}",
            input_cost_per_1k=Decimal("0"),
            output_cost_per_1k=Decimal("0"),
        )
    user = get_user_model().objects.create_user("bench", password="bench-password")
    client = Client()
    client.force_login(user)
    return user, client.cookies["sessionid"].value


def _start_app(port: int) -> subprocess.Popen:
    """The app as deployed: uvicorn in its own process, on the same scratch database."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "orchestrator_site.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--lifespan", "off"],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    _wait_port(port)
    return proc


def _runs(user: Any, models: list[str], n: int) -> list[int]:
    from playground import services
    from playground.models import RunMode

    return [
        services.run_create(user=user, mode=RunMode.MODELS, prompt=PROMPT, models=models).pk for _ in range(n)
    ]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _playground_stream(http: Any, base: str, run_id: int, position: int = 0) -> tuple[float, float]:
    """(ms to the first delta, ms to the end) for one column stream."""
    t0 = time.perf_counter()
    first = None
    async with http.stream("GET", f"{base}/playground/runs/{run_id}/columns/{position}/stream/") as response:
        assert response.status_code == 200, response.status_code
        async for line in response.aiter_lines():
            if first is None and line == "event: delta":
                first = (time.perf_counter() - t0) * 1000
            if line == "event: end":
                break
    total = (time.perf_counter() - t0) * 1000
    return (first if first is not None else total), total


async def _ttft(
    fake_url: str, base: str, session: str, run_ids: list[int], warmup: int
) -> dict[str, list[float]]:
    import httpx
    from openai import AsyncOpenAI

    raw = AsyncOpenAI(base_url=f"{fake_url}/v1", api_key=FAKE_KEY, max_retries=0, timeout=30)

    async def sdk() -> float:
        t0 = time.perf_counter()
        stream = await raw.chat.completions.create(
            model="bench-model",
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
        )
        first = None
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = (time.perf_counter() - t0) * 1000
        return first if first is not None else (time.perf_counter() - t0) * 1000

    times: dict[str, list[float]] = {"sdk": [], "playground": [], "floor": []}
    async with httpx.AsyncClient(cookies={"sessionid": session}, timeout=30) as http:

        async def floor() -> float:
            # The web stack alone: a logged-in page view that does nothing (session, user, middleware).
            t0 = time.perf_counter()
            response = await http.get(f"{base}/playground/route-prompt/", headers={"HX-Request": "true"})
            assert response.status_code == 200, response.status_code
            return (time.perf_counter() - t0) * 1000

        for i, run_id in enumerate(run_ids):
            order = ["sdk", "playground", "floor"]
            order = order[i % 3 :] + order[: i % 3]
            for name in order:
                if name == "sdk":
                    value = await sdk()
                elif name == "floor":
                    value = await floor()
                else:
                    value = (await _playground_stream(http, base, run_id))[0]
                if i >= warmup:
                    times[name].append(value)
    await raw.close()
    return times


async def _concurrency(base: str, session: str, alone_ids: dict[str, list[int]], together_ids: list[int]):
    import httpx

    async with httpx.AsyncClient(cookies={"sessionid": session}, timeout=30) as http:
        alone: dict[str, list[float]] = {}
        for model, ids in alone_ids.items():
            alone[model] = [(await _playground_stream(http, base, run_id))[1] for run_id in ids]
        together = []
        for run_id in together_ids:
            t0 = time.perf_counter()
            await asyncio.gather(*(_playground_stream(http, base, run_id, p) for p in range(3)))
            together.append((time.perf_counter() - t0) * 1000)
    return alone, together


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    samples = 60 if quick else 300
    for arg in argv:
        if arg.startswith("--samples="):
            samples = int(arg.split("=", 1)[1])
    rounds = 3 if quick else 10
    warmup = 20

    with tempfile.TemporaryDirectory(prefix="bench-playground-") as var_dir:
        setup_django(var_dir, allow_async_unsafe=True)
        fake_port, app_port = _free_port(), _free_port()
        fake = _start_fake_server(fake_port)
        fake_url = f"http://127.0.0.1:{fake_port}"
        app = None
        try:
            user, session = _config(fake_url)
            ttft_runs = _runs(user, ["bench-model"], samples + warmup)
            sims = ["sim-300ms", "sim-400ms", "sim-500ms"]
            alone_ids = {m: _runs(user, [m], rounds) for m in sims}
            together_ids = _runs(user, sims, rounds)
            app = _start_app(app_port)
            base = f"http://127.0.0.1:{app_port}"
            times = asyncio.run(_ttft(fake_url, base, session, ttft_runs, warmup))
            alone, together = asyncio.run(_concurrency(base, session, alone_ids, together_ids))
            from metrics.models import CallRecord
            from playground.models import PlaygroundColumn

            time.sleep(1.5)  # let the app's background record writer flush
            ok_columns = PlaygroundColumn.objects.filter(status="ok").count()
            records = CallRecord.objects.filter(source="playground").count()
        finally:
            for proc in (app, fake):
                if proc is not None:
                    proc.terminate()
                    proc.wait(10)

    s, p = times["sdk"], times["playground"]
    print(f"Time to first token ({len(s)} samples per side, alternating; fake provider answers at once)")
    print(f"  {'':44}{'p50 ms':>9}{'p90 ms':>9}{'mean ms':>9}")
    print(
        f"  {'openai SDK, stream=True, direct':44}{_pct(s, 0.5):>9.2f}{_pct(s, 0.9):>9.2f}{statistics.fmean(s):>9.2f}"
    )
    print(
        f"  {'playground SSE (uvicorn + Django + engine)':44}{_pct(p, 0.5):>9.2f}{_pct(p, 0.9):>9.2f}{statistics.fmean(p):>9.2f}"
    )
    f = times["floor"]
    print(
        f"  {'(web stack floor: a no-op logged-in htmx GET)':44}{_pct(f, 0.5):>9.2f}{_pct(f, 0.9):>9.2f}{statistics.fmean(f):>9.2f}"
    )
    print(
        f"  added: p50 {_pct(p, 0.5) - _pct(s, 0.5):+.2f} ms, p90 {_pct(p, 0.9) - _pct(s, 0.9):+.2f} ms; "
        f"ratio p50 {_pct(p, 0.5) / _pct(s, 0.5):.2f}x   (goal: <= 20 ms added)"
    )
    slowest_alone = max(statistics.median(v) for v in alone.values())
    print(f"\nThree concurrent column streams (simulated 300/400/500 ms), {rounds} rounds")
    for model, values in alone.items():
        print(f"  {model} alone: p50 {statistics.median(values):.1f} ms")
    print(f"  all three at once: p50 {statistics.median(together):.1f} ms, max {max(together):.1f} ms")
    print(
        f"  together / slowest alone: p50 {statistics.median(together) / slowest_alone:.3f}, "
        f"max {max(together) / slowest_alone:.3f}   (goal: <= 1.10; one after another would be ~2.4)"
    )
    print(f"  columns finished ok: {ok_columns}; playground call records: {records}")


if __name__ == "__main__":
    main(sys.argv[1:])
