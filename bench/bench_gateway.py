"""Gateway overhead: direct calls to a zero-latency fake OpenAI server vs the same calls
through the gateway (uvicorn subprocess, the real ASGI app), side by side in one run.

    python -m bench gateway [--quick] [--workers=N] [--sqlite] [--profile] [--stream | --no-stream]
                            [--stream-words=N] [--peers] [--rounds=N] [--server=uvicorn|uvicorn-httptools|granian]
                            [--embeddings | --no-embeddings] [--messages | --no-messages]
                            [--gateway-cpus=LIST --load-cpus=LIST]

- The fake server is the providers' FakeProviderServer (tests/fake_provider.py), run in its
  own process on loopback, replying at once (an echo, usage counted).
- The load generator is a minimal keep-alive HTTP/1.1 client on asyncio (uvloop), so the
  client's own cost stays small and is the same for both sides.
- The gateway runs on PostgreSQL + Redis when both answer on localhost (a scratch database
  `orchestrator_bench`, Redis db 14), else on SQLite with the local-memory cache.
- The API key used has an rpm limit, a tpm limit and a budget, so the limit and budget
  checks are in the measured path.
- Every gateway call must leave a CallRecord: the rows are counted afterwards.

Figures: p50/p95/p99 latency and requests/s at concurrency 1 and 32; "added" is the
gateway's figure minus the direct one; resident memory of the server process(es) at the end.

Then the same for streamed requests (`"stream": true`, `stream_options.include_usage`): the
load generator reads each SSE body to its end (chunked transfer) and times the first content
chunk (TTFT) as well as the whole answer (6 content chunks, a finish chunk, a usage chunk and
`[DONE]`, one HTTP chunk each; connections kept alive, as with a real provider).
`--stream` runs only this section, `--no-stream` only the plain one; `--stream-words=N` makes
the streamed answers about N words long (N content chunks), to weigh the per-chunk costs.
Then POST /v1/embeddings (`_embeddings_run`): two inputs, 256 dimensions, base64 as the
SDKs ask, direct to the fake provider and through the gateway at concurrency 1 and 32, each
call's record counted; `--embeddings` runs only this section, `--no-embeddings` skips it.
Then POST /v1/messages (`_messages_run`, Anthropic's Messages API): the same plain request in
Anthropic's shape, answered by an Anthropic-kind model (direct: the fake server's
`/v1/messages`) and by the OpenAI-style model (direct: the fake server's chat completions, the
same call chat's plain section makes), at concurrency 1 and 32, each call's record counted
(`endpoint` messages); `--messages` runs only this section, `--no-messages` skips it.
`--server=granian` serves the gateway with granian (a Rust HTTP server, ASGI interface, uvloop)
instead of uvicorn (httptools, uvloop), to compare servers with the same app.
`--peers` also runs Portkey's open-source Node gateway (bench/_peers.py) against the same fake
provider and measures it right after ours at each concurrency, in `--rounds=N` alternating
rounds (default 3; 2 with --quick): requests/s, added latency and CPU per request side by side,
and their ratios (ours / Portkey's).
Goals (issue 6): added p50 <= 1.5 ms and p99 <= 4 ms at concurrency 1, >= 1,000 req/s,
RSS <= 150 MB per server process. Benchmarks report; they never fail on a number.
`--gateway-cpus=1 --load-cpus=0` pins the gateway (and Portkey) to some cores and the load
generator and fake provider to others (`taskset` lists), to approximate separate machines.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import _peers
from bench._support import free_port as _free_port
from bench._support import wait_port as _wait_port

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PG_URL = "postgres://postgres@127.0.0.1:5432/orchestrator_bench"
REDIS_URL = "redis://127.0.0.1:6379/14"
FAKE_KEY_ENV = "FAKE_PROVIDER_API_KEY"
MODEL = "bench-model"
EMBED_MODEL = "bench-embed"


def _cpu_list(text: str) -> set[int]:
    """A taskset-style CPU list ("0", "0,1", "0-1") as a set."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


# -- Load generator ----------------------------------------------------------------------


def _request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, int | None, bool, bool]:
    """A response's status line and headers: (status, content length, chunked, connection close)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    chunked = close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection" and b"close" in value.lower():
            close = True
    return status, length, chunked, close


async def _read_response(reader: asyncio.StreamReader) -> int:
    status, length, chunked, _ = await _read_head(reader)
    if length is not None:
        await reader.readexactly(length)
    elif chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _load(port: int, path: str, body: bytes, headers: dict[str, str], concurrency: int, total: int):
    raw = _request("127.0.0.1", port, path, body, headers)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                writer.write(raw)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - start)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return latencies, elapsed, statuses


def _run_load(port, path, body, headers, concurrency, total):
    try:
        import uvloop

        return uvloop.run(_load(port, path, body, headers, concurrency, total))
    except ImportError:
        return asyncio.run(_load(port, path, body, headers, concurrency, total))


# A content delta with some text: the fake server writes `"content": "…"`, the gateway
# `"content":"…"`; the role chunk's empty content does not match.
_CONTENT = re.compile(rb'"content": ?"[^"]')


async def _read_stream(reader: asyncio.StreamReader, start: float) -> tuple[int, float, bool]:
    """Read one response to its end (an SSE body in chunked transfer); return the status,
    the seconds from `start` to the first chunk carrying text, and whether the server closes
    the connection after it."""
    status, length, chunked, close = await _read_head(reader)
    first = 0.0
    if length is not None:
        await reader.readexactly(length)
    elif chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            data = await reader.readexactly(size + 2)
            if not first and _CONTENT.search(data):
                first = time.perf_counter() - start
            if size == 0:
                break
    else:
        await reader.read()
        close = True
    return status, first or (time.perf_counter() - start), close


async def _load_stream(
    port: int, path: str, body: bytes, headers: dict[str, str], concurrency: int, total: int
):
    """Like `_load`, for streamed requests: every body is read to its end; a connection the
    server closes is reopened for the next request, inside that request's timing."""
    raw = _request("127.0.0.1", port, path, body, headers)
    latencies: list[float] = []
    firsts: list[float] = []
    statuses: dict[int, int] = {}
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        connection = None
        try:
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                if connection is None:
                    connection = await asyncio.open_connection("127.0.0.1", port)
                reader, writer = connection
                writer.write(raw)
                status, first, close = await _read_stream(reader, start)
                latencies.append(time.perf_counter() - start)
                firsts.append(first)
                statuses[status] = statuses.get(status, 0) + 1
                if close:
                    writer.close()
                    connection = None
        finally:
            if connection is not None:
                connection[1].close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    return latencies, elapsed, statuses, firsts


def _run_stream_load(port, path, body, headers, concurrency, total):
    try:
        import uvloop

        return uvloop.run(_load_stream(port, path, body, headers, concurrency, total))
    except ImportError:
        return asyncio.run(_load_stream(port, path, body, headers, concurrency, total))


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def _summary(latencies, elapsed, statuses, firsts=None) -> dict:
    summary = {
        "p50": _pct(latencies, 50),
        "p95": _pct(latencies, 95),
        "p99": _pct(latencies, 99),
        "mean": statistics.fmean(latencies) * 1000,
        "rps": len(latencies) / elapsed,
        "n": len(latencies),
        "statuses": statuses,
    }
    if firsts is not None:
        summary.update(ttft50=_pct(firsts, 50), ttft95=_pct(firsts, 95), ttft99=_pct(firsts, 99))
    return summary


# -- Processes ---------------------------------------------------------------------------

FAKE_SERVER = """
import sys, threading
sys.path.insert(0, {root!r})
from tests.fake_provider import FakeProviderServer
server = FakeProviderServer(port={port})
server.history = type("NoHistory", (list,), {{"append": lambda self, item: None}})()
server.start()
print("ready", flush=True)
threading.Event().wait()
"""

SETUP = """
import django, os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator_site.settings")
django.setup()
from decimal import Decimal
from django.core.management import call_command
call_command("migrate", verbosity=0)
from routing.models import Capability, Provider, ModelConfig
from gateway.services import api_key_create
from metrics.models import CallRecord
provider, _ = Provider.objects.update_or_create(
    name="bench-fake", defaults=dict(kind="openai", base_url={base_url!r}, api_key_env={key_env!r}))
ModelConfig.objects.update_or_create(name={model!r}, defaults=dict(provider=provider, model_id={model!r},
    input_cost_per_1k=Decimal("0.001"), output_cost_per_1k=Decimal("0.002"), context_window=128000))
embedder, _ = ModelConfig.objects.update_or_create(name={embed_model!r}, defaults=dict(provider=provider,
    model_id={embed_model!r}, embedding_dimensions=256, input_cost_per_1k=Decimal("0.00002"),
    output_cost_per_1k=Decimal("0"), context_window=8192))
embedder.capabilities.set([Capability.objects.get_or_create(slug="embedding")[0]])
CallRecord.objects.all().delete()
key, raw = api_key_create(name="bench", rpm=10_000_000, tpm=1_000_000_000, budget_usd=Decimal("1000000"))
print(raw)
"""

# --stub-engine: the same server with the engine's acomplete answering at once (no provider
# call, no record): what the gateway layer itself (front, auth, validation, limits, response)
# sustains. A diagnostic, not the product's figure.
STUB_SERVER = """
import os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator_site.settings")
import django
django.setup()
from decimal import Decimal
import routing.orchestrator as orchestrator
from routing.engine.types import Result, Usage

async def acomplete(messages, **kwargs):
    return Result(text="Echo", model={model!r}, trace_id=kwargs["trace_id"], usage=Usage(5, 1),
                  cost_usd=Decimal("0.000007"))

orchestrator.acomplete = acomplete
import uvicorn
uvicorn.run("orchestrator_site.asgi:application", host="127.0.0.1", port={port}, log_level="warning",
            access_log=False, lifespan="off", loop="uvloop", http="httptools")
"""

COUNT = """
import django, os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator_site.settings")
django.setup()
from metrics.models import CallRecord
ok = CallRecord.objects.filter(source="gateway", status="ok")
print(ok.filter(stream=False, endpoint="chat.completions").count(), ok.filter(stream=True).count())
"""


def _python(code: str, env: dict[str, str]) -> str:
    out = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return out.stdout.strip()


def _rss_mb(pid: int) -> list[float]:
    """RSS of the process and its children (uvicorn --workers runs children)."""
    pids = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(p) for p in children]
    except OSError:
        pass
    out = []
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) / 1024)
        except OSError:
            pass
    return out


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by the process and its children (workers)."""
    pids = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(p) for p in children]
    except OSError:
        pass
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            pass
    return total


def _print_profile(path: Path, top: int = 80, label: str = "plain") -> None:
    """Inclusive share of samples per function, from py-spy's collapsed stacks."""
    if not path.exists():
        print("profile: py-spy wrote nothing (needs ptrace permission)")
        return
    inclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        for frame in set(stack.split(";")):
            inclusive[frame] = inclusive.get(frame, 0) + n
    what = "streamed requests" if label == "stream" else "plain requests"
    print(f"\nprofile of the gateway process at c=32, {what} ({total} samples), inclusive share:")
    ranked = sorted(inclusive.items(), key=lambda kv: -kv[1])
    for frame, n in ranked[:top]:
        print(f"  {100 * n / total:5.1f}%  {frame[:150]}")
    print("our own frames (gateway/, routing/, metrics/, uvicorn's protocol):")
    ours = ("gateway/", "routing/", "metrics/", "httptools_impl", "orchestrator_site/")
    for frame, n in ranked:
        if any(o in frame for o in ours) and 100 * n / total >= 1:
            print(f"  {100 * n / total:5.1f}%  {frame[:150]}")


def _print_plain(results: dict) -> None:
    print()
    print(f"{'':22}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>10}  statuses")
    for concurrency, (d, g) in results.items():
        print(
            f"c={concurrency:<3} direct          {d['p50']:9.2f}{d['p95']:9.2f}{d['p99']:9.2f}{d['rps']:10.0f}  {d['statuses']}"
        )
        print(
            f"c={concurrency:<3} through gateway {g['p50']:9.2f}{g['p95']:9.2f}{g['p99']:9.2f}{g['rps']:10.0f}  {g['statuses']}"
        )
        print(
            f"c={concurrency:<3} added           {g['p50'] - d['p50']:9.2f}{g['p95'] - d['p95']:9.2f}"
            f"{g['p99'] - d['p99']:9.2f}   ratio of req/s: {g['rps'] / d['rps']:.2f}x"
        )
        print(
            f"c={concurrency:<3} CPU per gateway request: {g['cpu_ms']:.2f} ms in the gateway process(es), "
            f"{g['fake_cpu_ms']:.2f} ms in the fake provider"
        )


def _print_stream(results: dict) -> None:
    print("\nstreamed (SSE, include_usage), ms: time to the first content chunk (TTFT) and to the end")
    print(
        f"{'':22}{'TTFT p50':>9}{'p95':>8}{'p99':>8}  {'total p50':>9}{'p95':>8}{'p99':>8}{'req/s':>8}  statuses"
    )

    def row(label: str, r: dict) -> str:
        return (
            f"{label:22}{r['ttft50']:9.2f}{r['ttft95']:8.2f}{r['ttft99']:8.2f}  "
            f"{r['p50']:9.2f}{r['p95']:8.2f}{r['p99']:8.2f}"
        )

    for concurrency, (d, g) in results.items():
        print(row(f"c={concurrency:<3} direct", d) + f"{d['rps']:8.0f}  {d['statuses']}")
        print(row(f"c={concurrency:<3} through gateway", g) + f"{g['rps']:8.0f}  {g['statuses']}")
        added = {k: g[k] - d[k] for k in ("ttft50", "ttft95", "ttft99", "p50", "p95", "p99")}
        print(row(f"c={concurrency:<3} added", added) + f"   ratio of req/s: {g['rps'] / d['rps']:.2f}x")
        print(
            f"c={concurrency:<3} CPU per streamed gateway request: {g['cpu_ms']:.2f} ms in the gateway "
            f"process(es), {g['fake_cpu_ms']:.2f} ms in the fake provider"
        )


def _print_peers(section: str, results: dict) -> None:
    """Ours against Portkey's gateway, round by round: the ratios are ours / Portkey's."""
    streamed = section == "stream"
    what = "streamed (added = to the end of the stream)" if streamed else "plain"
    print(f"\nours vs Portkey, {what}: added ms over direct, req/s, CPU ms per request")
    print(
        f"{'':13}{'ours p50':>9}{'p99':>8}{'req/s':>8}{'CPU':>6}  {'Portkey p50':>11}{'p99':>8}{'req/s':>8}{'CPU':>6}"
        f"  {'req/s ratio':>11}{'CPU ratio':>10}"
    )
    for concurrency, (d, pairs) in results.items():
        for n, (g, pk) in enumerate(pairs, 1):
            print(
                f"c={concurrency:<3} r{n:<6}{g['p50'] - d['p50']:9.2f}{g['p99'] - d['p99']:8.2f}{g['rps']:8.0f}"
                f"{g['cpu_ms']:6.2f}  {pk['p50'] - d['p50']:11.2f}{pk['p99'] - d['p99']:8.2f}{pk['rps']:8.0f}"
                f"{pk['cpu_ms']:6.2f}  {g['rps'] / pk['rps']:10.2f}x{g['cpu_ms'] / max(pk['cpu_ms'], 1e-9):9.2f}x"
            )
        bad = [pk["statuses"] for _, pk in pairs if set(pk["statuses"]) != {200}]
        if bad:
            print(f"c={concurrency:<3} Portkey answered with statuses {bad}: its figures are not comparable")


# -- The embeddings section -------------------------------------------------------------

EMBED_COUNT = """
import django, os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator_site.settings")
django.setup()
from metrics.models import CallRecord
print(CallRecord.objects.filter(source="gateway", status="ok", endpoint="embeddings").count())
"""


def _embeddings_run(
    *, fake: subprocess.Popen, gateway: subprocess.Popen, ports: tuple[int, int], auth: dict, sizes: tuple
) -> dict:
    """POST /v1/embeddings direct to the fake provider and through the gateway, at c=1 and c=32:
    {concurrency: (direct, gateway)} summaries (the gateway's with its CPU per request), plus
    how many calls answered 200 ("sent")."""
    fake_port, gw_port = ports
    n1, n32, warm = sizes
    inputs = ["Embed this sentence for the benchmark.", "And this one, a little longer than the first."]
    payload = {"model": EMBED_MODEL, "input": inputs, "dimensions": 256, "encoding_format": "base64"}
    body = json.dumps(payload).encode()
    direct = (fake_port, "/v1/embeddings", body, {"Authorization": "Bearer sk-bench"})
    through = (gw_port, "/v1/embeddings", body, auth)
    _run_load(*direct, 1, warm)
    sent = _run_load(*through, 4, warm)[2].get(200, 0)
    results: dict = {}
    for concurrency, total in ((1, n1), (32, n32)):
        d = _summary(*_run_load(*direct, concurrency, total))
        cpu_before = _cpu_s(gateway.pid), _cpu_s(fake.pid)
        g = _summary(*_run_load(*through, concurrency, total))
        g["cpu_ms"] = (_cpu_s(gateway.pid) - cpu_before[0]) * 1000 / max(g["n"], 1)
        g["fake_cpu_ms"] = (_cpu_s(fake.pid) - cpu_before[1]) * 1000 / max(g["n"], 1)
        sent += g["statuses"].get(200, 0)
        results[concurrency] = (d, g)
    return {"by_concurrency": results, "sent": sent}


def _embeddings_records(env: dict[str, str], expected: int) -> int:
    """The embeddings calls' records once they are all in (written in the background), or what
    is there after 30 s."""
    deadline = time.monotonic() + 30
    count = -1
    while time.monotonic() < deadline:
        count = int(_python(EMBED_COUNT.format(root=str(ROOT)), env))
        if count >= expected:
            break
        time.sleep(0.5)
    return count


def _print_embeddings(results: dict) -> None:
    print("\nembeddings (POST /v1/embeddings: 2 inputs, 256 dimensions, base64)")
    _print_plain(results["by_concurrency"])


# -- The /v1/messages section -------------------------------------------------------------

MESSAGES_MODEL = "bench-claude"
MESSAGES_SETUP = """
import django, os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator_site.settings")
django.setup()
from decimal import Decimal
from routing.models import Provider, ModelConfig
provider, _ = Provider.objects.update_or_create(
    name="bench-fake-anthropic", defaults=dict(kind="anthropic", base_url={base_url!r}, api_key_env={key_env!r}))
ModelConfig.objects.update_or_create(name={model!r}, defaults=dict(provider=provider, model_id={model!r},
    input_cost_per_1k=Decimal("0.001"), output_cost_per_1k=Decimal("0.002"), context_window=128000))
"""
MESSAGES_COUNT = """
import django, os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator_site.settings")
django.setup()
from metrics.models import CallRecord
print(CallRecord.objects.filter(source="gateway", status="ok", endpoint="messages").count())
"""


def _messages_run(
    *, fake: subprocess.Popen, gateway: subprocess.Popen, ports: tuple[int, int], raw_key: str, sizes: tuple
) -> dict:
    """POST /v1/messages through the gateway, answered by an Anthropic-kind model and by the
    OpenAI-style one, each against a direct call to the fake provider on the model's own wire,
    at c=1 and c=32: latency, req/s, CPU per request."""
    n1, n32, warm = sizes
    fake_port, gw_port = ports
    ask = [{"role": "user", "content": "Say hello to the benchmark."}]
    version = {"anthropic-version": "2023-06-01"}
    out: dict = {"sent": 0}
    for label, model in (("anthropic", MESSAGES_MODEL), ("openai", MODEL)):
        body = json.dumps({"model": model, "max_tokens": 64, "messages": ask}).encode()
        if label == "anthropic":
            direct = (fake_port, "/v1/messages", body, {"x-api-key": "sk-bench", **version})
        else:
            chat = json.dumps({"model": model, "max_completion_tokens": 64, "messages": ask}).encode()
            direct = (fake_port, "/v1/chat/completions", chat, {"Authorization": "Bearer sk-bench"})
        through = (gw_port, "/v1/messages", body, {"x-api-key": raw_key, **version})
        _run_load(*direct, 1, warm)
        out["sent"] += _run_load(*through, 4, warm)[2].get(200, 0)
        results: dict = {}
        for concurrency, total in ((1, n1), (32, n32)):
            d = _summary(*_run_load(*direct, concurrency, total))
            cpu_before = _cpu_s(gateway.pid), _cpu_s(fake.pid)
            g = _summary(*_run_load(*through, concurrency, total))
            g["cpu_ms"] = (_cpu_s(gateway.pid) - cpu_before[0]) * 1000 / max(g["n"], 1)
            g["fake_cpu_ms"] = (_cpu_s(fake.pid) - cpu_before[1]) * 1000 / max(g["n"], 1)
            out["sent"] += g["statuses"].get(200, 0)
            results[concurrency] = (d, g)
        out[label] = results
    return out


def _messages_records(env: dict[str, str], expected: int) -> int:
    """The /v1/messages calls' records once they are all in, or what is there after 30 s."""
    deadline = time.monotonic() + 30
    count = -1
    while time.monotonic() < deadline:
        count = int(_python(MESSAGES_COUNT.format(root=str(ROOT)), env))
        if count >= expected:
            break
        time.sleep(0.5)
    return count


def _prepare_postgres() -> bool:
    if not (shutil.which("psql") and _reachable(5432) and _reachable(6379)):
        return False
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", "DROP DATABASE IF EXISTS orchestrator_bench"],
        capture_output=True,
    )
    made = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", "CREATE DATABASE orchestrator_bench"],
        capture_output=True,
    )
    return made.returncode == 0


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    sqlite = "--sqlite" in argv
    profile = "--profile" in argv
    stub = "--stub-engine" in argv
    # --stream: only the streamed section; --no-stream: only the plain one.
    skip = "plain" if "--stream" in argv else "stream" if "--no-stream" in argv else ""
    # --profile-out=PATH keeps py-spy's collapsed stacks (implies --profile).
    profile_out = next((a.split("=", 1)[1] for a in argv if a.startswith("--profile-out=")), "")
    profile = profile or bool(profile_out)
    workers = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--workers=")), 1)
    peers = "--peers" in argv
    rounds = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--rounds=")), 2 if quick else 3)
    n1 = 500 if quick else 3000
    n32 = 2000 if quick else 15000
    warm = 200 if quick else 1000

    gateway_cpus = next((a.split("=", 1)[1] for a in argv if a.startswith("--gateway-cpus=")), "")
    load_cpus = next((a.split("=", 1)[1] for a in argv if a.startswith("--load-cpus=")), "")
    if load_cpus:  # this process (the load generator) and the fake provider it starts
        os.sched_setaffinity(0, _cpu_list(load_cpus))

    var_dir = tempfile.mkdtemp(prefix="bench-gateway-")
    env = {
        **os.environ,
        "ORCHESTRATOR_VAR_DIR": var_dir,
        "HTTPS": "false",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        FAKE_KEY_ENV: "sk-bench",
        "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
    }
    env.pop("ORCHESTRATOR_TESTING", None)
    backend = "SQLite + local-memory cache"
    if not sqlite and _prepare_postgres():
        env.update(DATABASE_URL=PG_URL, REDIS_URL=REDIS_URL, DB_CONN_MAX_AGE="600")
        subprocess.run(["redis-cli", "-n", "14", "flushdb"], capture_output=True)
        backend = "PostgreSQL + Redis"
    else:
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)

    procs: list[subprocess.Popen] = []
    try:
        fake_port = _free_port()
        fake = subprocess.Popen(
            [PY, "-c", FAKE_SERVER.format(root=str(ROOT), port=fake_port)], stdout=subprocess.PIPE, env=env
        )
        procs.append(fake)
        assert fake.stdout is not None
        fake.stdout.readline()
        fake_url = f"http://127.0.0.1:{fake_port}"
        raw_key = _python(
            SETUP.format(
                root=str(ROOT),
                base_url=f"{fake_url}/v1",
                key_env=FAKE_KEY_ENV,
                model=MODEL,
                embed_model=EMBED_MODEL,
            ),
            env,
        ).splitlines()[-1]
        _python(
            MESSAGES_SETUP.format(
                root=str(ROOT), base_url=fake_url, key_env=FAKE_KEY_ENV, model=MESSAGES_MODEL
            ),
            env,
        )

        gw_port = _free_port()
        server = next((a.split("=", 1)[1] for a in argv if a.startswith("--server=")), "uvicorn")
        # scripts/serve's protocol (uvicorn's httptools one, a turn's writes in one call);
        # --server=uvicorn-httptools: uvicorn's own, to compare.
        http = "httptools" if server == "uvicorn-httptools" else "orchestrator_site.server:HttpProtocol"
        cmd = [
            PY, "-m", "uvicorn", "orchestrator_site.asgi:application", "--host", "127.0.0.1",
            "--port", str(gw_port), "--no-access-log", "--log-level", "warning", "--lifespan", "off",
            "--loop", "uvloop", "--http", http,
        ]  # fmt: skip
        if workers > 1:
            cmd += ["--workers", str(workers)]
        if server == "granian":
            cmd = [
                PY, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(gw_port),
                "--workers", str(workers), "--loop", "uvloop", "--no-ws", "--log-level", "warning",
                "--runtime-mode", "st", "orchestrator_site.asgi:application",
            ]  # fmt: skip
        if stub:
            cmd = [PY, "-c", STUB_SERVER.format(root=str(ROOT), model=MODEL, port=gw_port)]
        if gateway_cpus:
            cmd = ["taskset", "-c", gateway_cpus, *cmd]
        gateway = subprocess.Popen(cmd, env=env, cwd=ROOT)
        procs.append(gateway)
        _wait_port(gw_port)
        portkey = None
        if peers:
            portkey, pk_port = _peers.portkey_start(env)
            procs.append(portkey)
            if gateway_cpus:  # every thread of the running Node process
                subprocess.run(
                    ["taskset", "-a", "-p", "-c", gateway_cpus, str(portkey.pid)], capture_output=True
                )

        messages = [{"role": "user", "content": "Say hello to the benchmark."}]
        # --stream-words=N: a streamed answer of about N words (N content chunks) instead of 6.
        words = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("--stream-words=")), 0)
        stream_messages = [{"role": "user", "content": " ".join(["word"] * words)}] if words else messages
        auth = {"Authorization": f"Bearer {raw_key}"}
        mode = " (engine stubbed: the gateway layer alone)" if stub else ""
        print(f"backend: {backend}; gateway workers: {workers} ({server}); fake provider: {fake_url}{mode}")
        if gateway_cpus or load_cpus:
            print(
                f"pinned: gateway on CPUs {gateway_cpus or 'any'}, load generator and fake provider on {load_cpus or 'any'}"
            )
        if peers:
            print(
                f"peers: Portkey gateway {_peers.PORTKEY_VERSION} (node {_peers.node_version()}), "
                f"{rounds} alternating rounds per concurrency; load average {os.getloadavg()[0]:.2f}"
            )
        peer_results: dict[str, dict] = {}
        rss_start: list[float] = []
        sections = [s for s in ("plain", "stream") if s != skip] if not stub else ["plain"]
        # --embeddings: only the embeddings section; it also runs unless --no-embeddings, --stream
        # (streamed only) or --stub-engine.
        embed = "--embeddings" in argv or not (stub or skip == "plain" or "--no-embeddings" in argv)
        # --messages: only the /v1/messages section; it also runs unless --no-messages, --stream
        # or --stub-engine.
        anthropic_messages = "--messages" in argv or not (stub or skip == "plain" or "--no-messages" in argv)
        if "--embeddings" in argv:
            sections = []
            anthropic_messages = "--messages" in argv
        if "--messages" in argv:
            sections = []
            embed = "--embeddings" in argv
        results: dict[str, dict] = {}
        sent = {"plain": 0, "stream": 0}
        warmed = {"plain": 0, "stream": 0}
        for section in sections:
            payload: dict = {"model": MODEL, "messages": messages}
            if section == "stream":
                payload.update(messages=stream_messages, stream=True, stream_options={"include_usage": True})
            body = json.dumps(payload).encode()
            direct = (fake_port, "/v1/chat/completions", body, {"Authorization": "Bearer sk-bench"})
            through = (gw_port, "/v1/chat/completions", body, auth)
            load = _run_stream_load if section == "stream" else _run_load
            load(*direct, 1, warm)
            warmed[section] = load(*through, 4, warm)[2].get(200, 0)
            peer = (
                (pk_port, "/v1/chat/completions", body, _peers.portkey_headers(fake_url, "sk-bench"))
                if portkey
                else None
            )
            if peer:
                load(*peer, 4, warm)
            rss_start = rss_start or _rss_mb(gateway.pid)
            by_concurrency = {}
            for concurrency, total in ((1, n1), (32, n32)):
                d = _summary(*load(*direct, concurrency, total))
                spy = None
                if profile and concurrency == 32:
                    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(PY).parent))
                    if spy:
                        prof = subprocess.Popen(
                            [spy, "record", "--format", "raw", "-o", f"{var_dir}/gateway.txt", "-p",
                             str(gateway.pid), "-d", "6", "-r", "200"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        )  # fmt: skip
                cpu_before = _cpu_s(gateway.pid), _cpu_s(fake.pid)
                g = _summary(*load(*through, concurrency, total))
                # CPU per request: far less sensitive than latency to what else the machine runs.
                g["cpu_ms"] = (_cpu_s(gateway.pid) - cpu_before[0]) * 1000 / max(g["n"], 1)
                g["fake_cpu_ms"] = (_cpu_s(fake.pid) - cpu_before[1]) * 1000 / max(g["n"], 1)
                sent[section] += g["statuses"].get(200, 0)
                by_concurrency[concurrency] = (d, g)
                if peer and portkey:
                    pairs = []
                    for round_no in range(rounds):
                        if round_no:  # ours again, so drift hits both alike
                            cpu_gw = _cpu_s(gateway.pid)
                            g = _summary(*load(*through, concurrency, total))
                            g["cpu_ms"] = (_cpu_s(gateway.pid) - cpu_gw) * 1000 / max(g["n"], 1)
                            sent[section] += g["statuses"].get(200, 0)
                        cpu_pk = _cpu_s(portkey.pid)
                        pk = _summary(*load(*peer, concurrency, total))
                        pk["cpu_ms"] = (_cpu_s(portkey.pid) - cpu_pk) * 1000 / max(pk["n"], 1)
                        pairs.append((g, pk))
                    peer_results.setdefault(section, {})[concurrency] = (d, pairs)
                if spy:
                    prof.wait()
                    _print_profile(Path(f"{var_dir}/gateway.txt"), label=section)
                    if profile_out:
                        out = profile_out if section == "plain" or skip else f"{profile_out}.stream"
                        shutil.copy(f"{var_dir}/gateway.txt", out)
            results[section] = by_concurrency

        embeddings = None
        if embed:
            rss_start = rss_start or _rss_mb(gateway.pid)
            embeddings = _embeddings_run(
                fake=fake, gateway=gateway, ports=(fake_port, gw_port), auth=auth, sizes=(n1, n32, warm)
            )
        messages_results = None
        if anthropic_messages:
            rss_start = rss_start or _rss_mb(gateway.pid)
            messages_results = _messages_run(
                fake=fake, gateway=gateway, ports=(fake_port, gw_port), raw_key=raw_key, sizes=(n1, n32, warm)
            )
        rss_end = _rss_mb(gateway.pid)
        if "plain" in results:
            _print_plain(results["plain"])
        if "stream" in results:
            _print_stream(results["stream"])
        if embeddings:
            _print_embeddings(embeddings)
        if messages_results:
            print(
                "\n/v1/messages (Anthropic's Messages API) answered by an Anthropic-kind model; direct: /v1/messages"
            )
            _print_plain(messages_results["anthropic"])
            print(
                "\n/v1/messages answered by the OpenAI-style model; direct: its chat completions (as chat's plain)"
            )
            _print_plain(messages_results["openai"])
        for section, by_c in peer_results.items():
            _print_peers(section, by_c)
        # Records are written in the background (buffered): wait until they are all in.
        expected = {k: sent[k] + warmed[k] for k in sent}
        counts = {"plain": -1, "stream": -1}
        deadline = time.monotonic() + (0 if stub else 30)
        while time.monotonic() < deadline:
            plain, streamed = _python(COUNT.format(root=str(ROOT)), env).split()
            counts = {"plain": int(plain), "stream": int(streamed)}
            if all(counts[k] >= expected[k] for k in results):
                break
            time.sleep(0.5)
        if not stub:
            print()
            for section in results:
                what = "streamed" if section == "stream" else "successful"
                lost = max(expected[section] - counts[section], 0)
                print(
                    f"records: {counts[section]} CallRecords (stream={section == 'stream'}) for "
                    f"{expected[section]} {what} gateway calls (lost: {lost})"
                )
        if embeddings:
            count = _embeddings_records(env, embeddings["sent"])
            lost = max(embeddings["sent"] - count, 0)
            print(
                f"records: {count} CallRecords (endpoint=embeddings) for {embeddings['sent']} calls (lost: {lost})"
            )
        if messages_results:
            count = _messages_records(env, messages_results["sent"])
            lost = max(messages_results["sent"] - count, 0)
            print(
                f"records: {count} CallRecords (endpoint=messages) for {messages_results['sent']} calls (lost: {lost})"
            )
        print("RSS MB per server process: start " + ", ".join(f"{r:.0f}" for r in rss_start)
              + "; end " + ", ".join(f"{r:.0f}" for r in rss_end))  # fmt: skip
        if "plain" in results:
            d1, g1 = results["plain"][1]
            _, g32 = results["plain"][32]
            print(
                f"goals: added p50 {g1['p50'] - d1['p50']:.2f} ms (<= 1.5), added p99 {g1['p99'] - d1['p99']:.2f} ms "
                f"(<= 4), {g32['rps']:.0f} req/s at c=32 (>= 1000), RSS {max(rss_end):.0f} MB (<= 150)"
            )
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
