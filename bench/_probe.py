"""The probe's plumbing (bench_probe.py): a throwaway PostgreSQL cluster, subprocesses with
logs, an HTTP load generator on httpx that keeps every answer, and the figures it prints."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench._support import ROOT, free_port

PY = sys.executable


@dataclass
class Sent:
    phase: str
    start: float
    end: float
    status: int
    body: str
    attempts: int
    trace: str = ""


def as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Cluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1:`port`, trust authentication."""

    def __init__(self, base: Path) -> None:
        self.dir = base / "pg"
        self.dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        self.log = base / "pg" / "server.log"
        subprocess.run(
            as_postgres(["initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres"]),
            check=True,
            capture_output=True,
        )
        self.start()

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        cmd = ["pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.log), "-o", options, *args]
        subprocess.run(as_postgres(cmd), check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._ctl("-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-w", "-m", mode, "stop")

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/orchestrator_probe"

    def psql(self, sql: str, database: str = "orchestrator_probe") -> str:
        cmd = ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-Atc", sql]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def spawn(cmd: list[str], log: Path, **kwargs) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, **kwargs)


def python(code: str, env: dict[str, str]) -> str:
    out = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=300)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return out.stdout.strip()


# -- Load ---------------------------------------------------------------------------------


def payload(index: int, *, content: str | None = None, stream: bool = False) -> bytes:
    body = {
        "model": "chain:probe",
        "messages": [
            {"role": "user", "content": content if content is not None else f"probe question {index}"}
        ],
        "max_tokens": 16,
    }
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels as \\ud800


async def send(client, url: str, key: str, payload: bytes, phase: str, out: list[Sent]) -> None:
    start = time.monotonic()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    try:
        response = await client.post(url, content=payload, headers=headers)
        body, status = response.text, response.status_code
        attempts = int(response.headers.get("x-orchestrator-attempts", "0") or 0)
        trace = response.headers.get("x-orchestrator-trace-id", "")
        if not attempts and status >= 400:
            try:
                attempts = len(json.loads(body).get("error", {}).get("attempts") or [])
            except (ValueError, AttributeError):
                attempts = 0
    except Exception as exc:  # a dropped connection or a client timeout is a figure too
        body, status, attempts, trace = f"{type(exc).__name__}: {exc}", 0, 0, ""
    out.append(Sent(phase, start, time.monotonic(), status, body, attempts, trace))


async def batch(url: str, key: str, payloads: list[bytes], phase: str, concurrency: int) -> list[Sent]:
    import httpx

    out: list[Sent] = []
    queue = list(reversed(payloads))
    async with httpx.AsyncClient(timeout=30.0) as client:

        async def worker() -> None:
            while queue:
                await send(client, url, key, queue.pop(), phase, out)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


async def steady(url: str, key: str, phase: str, *, seconds: float, concurrency: int, fault, at: float):
    """Requests back to back for `seconds`; `fault(begin)` runs in a thread at `at` seconds
    and returns the (start, end) monotonic times of the fault."""
    import httpx

    out: list[Sent] = []
    began = time.monotonic()
    async with httpx.AsyncClient(timeout=30.0) as client:

        async def worker(n: int) -> None:
            i = 0
            while time.monotonic() - began < seconds:
                i += 1
                await send(client, url, key, payload(n * 10000 + i), phase, out)

        async def trigger():
            await asyncio.sleep(at)  # the fault's schedule, not synchronisation
            return await asyncio.to_thread(fault)

        *_, window = await asyncio.gather(*(worker(n) for n in range(concurrency)), trigger())
    return out, window


# -- Figures -------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def statuses(sent: list[Sent]) -> str:
    return ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(Counter(x.status for x in sent).items()))


def stall_figures(name: str, sent: list[Sent], window: tuple[float, float]) -> None:
    begin, end = window
    during = [s for s in sent if s.start < end and s.end > begin]
    latencies = [1000 * (s.end - s.start) for s in during]
    print(f"{name}: {end - begin:.1f} s; {len(sent)} requests in the phase ({statuses(sent)})")
    print(
        f"  {len(during)} in flight during it: p50 {pct(latencies, 0.5):.0f} ms, max {max(latencies, default=0):.0f} ms;"
        f" statuses {statuses(during)}"
    )


def scan(needles: dict[str, str], places: dict[str, str]) -> None:
    print("secrets found (occurrences):")
    for place, text in places.items():
        hits = {name: text.count(value) for name, value in needles.items() if value in text}
        print(f"  {place:<28} {', '.join(f'{k}: {v}' for k, v in hits.items()) or 'none'}")


def wait_records(cluster: Cluster, timeout: float = 30.0) -> int:
    """Records are written in batches: wait (bounded) until the count stops moving."""
    deadline = time.monotonic() + timeout
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            count = int(cluster.psql("SELECT count(*) FROM metrics_callrecord"))
        except subprocess.CalledProcessError:
            count = last
        if count != last:
            last, stable_since = count, time.monotonic()
        elif time.monotonic() - stable_since > 3:
            break
        time.sleep(0.5)  # polling interval of a bounded wait
    return last
