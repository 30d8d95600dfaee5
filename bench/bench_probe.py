"""Fault-injection probe (issue 11): a live gateway on its own PostgreSQL and Redis, hit with
provider faults, a Redis stall, a PostgreSQL outage and bad characters; then what was served,
what was recorded and whether a secret leaked anywhere.

    python -m bench probe [--quick]

Everything runs on this machine, on loopback only, and is bounded in count and time (about
two minutes; `--quick` about one):

- its own redis-server (SIGSTOP/SIGCONT stalls it) and its own throwaway PostgreSQL cluster
  (initdb in a temporary directory; `pg_ctl stop -m fast` / `start` is the outage; run as the
  `postgres` user when the probe runs as root);
- the fake provider of tests/fake_provider.py in a process of its own, answering two models
  with a seeded mix of faults (rate limits, 500s, connection resets, hangs past the 1.5 s
  timeout, and errors that echo the Authorization header they received);
- `uvicorn --workers 2` serving the real ASGI app, with a secret provider key in its
  environment and two API keys.

Phases: faults (N requests through a two-model chain, a fifth streamed), a Redis stall and a
PostgreSQL outage under steady load (p50/max latency of the requests sent meanwhile), bad
characters (lone surrogates and NULs, then another tenant's requests). Then: responses by
status, call records vs attempts (the gateway's x-orchestrator-attempts, the provider's own
count), and the provider secret and the API keys searched for in every response body, the
whole database (pg_dump), the logs and the record spool. A probe reports; it never fails on
a number.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._probe import (
    Cluster,
    Sent,
    batch,
    payload,
    python,
    scan,
    spawn,
    stall_figures,
    statuses,
    steady,
    wait_records,
)
from bench._support import ROOT, free_port, wait_port

PY = sys.executable
FAKE_KEY_ENV = "FAKE_PROVIDER_API_KEY"
TIMEOUT_S = 1.5  # per attempt: a hung provider costs this much, then the chain moves on

FAKE_SERVER = """
import json, signal, sys, threading
sys.path.insert(0, {root!r})
from collections import Counter
from tests.fake_provider import FakeProviderServer, Reply
server = FakeProviderServer(port={port}).start()
faults = [(0.08, Reply.rate_limit(retry_after=0.2)), (0.08, Reply.server_error()),
          (0.06, Reply.reset()), (0.03, Reply.hang(5.0)), (0.05, Reply.echo_auth())]
server.set_mix("probe-a", faults, seed=11)
server.set_mix("probe-b", [(p / 3, r) for p, r in faults], seed=12)
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
done.wait()
history = list(server.history)
with open({stats!r}, "w") as out:
    json.dump({{"received": len(history), "kinds": Counter(r.reply_kind for r in history),
               "models": Counter(r.model for r in history)}}, out)
server.stop()
"""

SETUP = """
import json, os, sys
sys.path.insert(0, {root!r})
import django
django.setup()
from decimal import Decimal
from gateway.services import api_key_create
from routing.models import ChainStep, FallbackChain, ModelConfig, Provider
for name in ("probe-a", "probe-b"):
    provider = Provider.objects.create(name=f"fake-{{name}}", kind="openai", base_url={fake_url!r} + "/v1",
                                       api_key_env={key_env!r}, options={{"timeout_s": {timeout}}})
    ModelConfig.objects.create(name=name, provider=provider, model_id=name, context_window=128000,
                               input_cost_per_1k=Decimal("0.001"), output_cost_per_1k=Decimal("0.002"))
chain = FallbackChain.objects.create(name="probe")
for position, name in enumerate(("probe-a", "probe-b")):
    ChainStep.objects.create(chain=chain, model=ModelConfig.objects.get(name=name), position=position)
keys = {{}}
for name in ("probe", "other-tenant"):
    keys[name] = api_key_create(name=name, rpm=100000)[1]
print(json.dumps(keys))
"""


# -- The probe -----------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    n_faults = 200 if quick else 600
    stall_s = 5.0 if quick else 8.0
    outage_s = 5.5
    base = Path(tempfile.mkdtemp(prefix="probe-"))
    os.chmod(base, 0o755)
    provider_secret = "sk-probe-" + secrets.token_hex(20)
    procs: list[subprocess.Popen] = []
    cluster: Cluster | None = None
    started = time.monotonic()
    load = os.getloadavg()
    print(f"probe on {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    try:
        redis_port = free_port()
        redis_cmd = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""]
        redis = spawn([*redis_cmd, "--appendonly", "no"], base / "redis.log")
        procs.append(redis)
        wait_port(redis_port)
        cluster = Cluster(base)
        cluster.psql("CREATE DATABASE orchestrator_probe", database="postgres")

        fake_port = free_port()
        stats_path = base / "fake-stats.json"
        fake_code = FAKE_SERVER.format(root=str(ROOT), port=fake_port, stats=str(stats_path))
        fake = spawn([PY, "-c", fake_code], base / "fake.log")
        procs.append(fake)
        wait_port(fake_port)

        var_dir = base / "var"
        var_dir.mkdir()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "orchestrator_site.settings",
            "DATABASE_URL": cluster.url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "DB_CONN_MAX_AGE": "60",
            "ORCHESTRATOR_VAR_DIR": str(var_dir),
            "HTTPS": "false",
            "DEBUG": "false",
            "LOG_LEVEL": "INFO",
            "SECRET_KEY": "probe-only-secret-key-" + "x" * 40,
            FAKE_KEY_ENV: provider_secret,
        }
        env.pop("ORCHESTRATOR_TESTING", None)
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
        keys = json.loads(
            python(
                SETUP.format(
                    root=str(ROOT),
                    fake_url=f"http://127.0.0.1:{fake_port}",
                    key_env=FAKE_KEY_ENV,
                    timeout=TIMEOUT_S,
                ),
                env,
            ).splitlines()[-1]
        )
        port = free_port()
        gateway_log = base / "gateway.log"
        gateway = spawn(
            [PY, "-m", "uvicorn", "orchestrator_site.asgi:application", "--host", "127.0.0.1", "--port", str(port),
             "--workers", "2", "--no-access-log", "--lifespan", "off"],
            gateway_log, env=env, cwd=ROOT,
        )  # fmt: skip
        procs.append(gateway)
        wait_port(port, timeout=60)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        key = keys["probe"]
        sent: list[Sent] = []
        asyncio.run(batch(url, key, [payload(i) for i in range(20)], "warm-up", 4))

        # 1. Provider faults: about 30 % of first attempts fail, in five ways.
        began = time.monotonic()
        faults = asyncio.run(
            batch(url, key, [payload(i, stream=i % 5 == 0) for i in range(n_faults)], "faults", 16)
        )
        sent += faults
        print(f"\nfaults: {len(faults)} requests in {time.monotonic() - began:.1f} s ({statuses(faults)})")

        # 2. Redis stalled (SIGSTOP) under steady load.
        def redis_stall() -> tuple[float, float]:
            begin = time.monotonic()
            redis.send_signal(signal.SIGSTOP)
            time.sleep(stall_s)  # the stall's length
            redis.send_signal(signal.SIGCONT)
            return begin, time.monotonic()

        stalled, window = asyncio.run(
            steady(url, key, "redis", seconds=stall_s + 8, concurrency=8, fault=redis_stall, at=3)
        )
        sent += stalled
        stall_figures("Redis stall (SIGSTOP)", stalled, window)

        # 3. PostgreSQL stopped and started again under steady load.
        def pg_outage() -> tuple[float, float]:
            begin = time.monotonic()
            assert cluster is not None
            cluster.stop("fast")
            time.sleep(max(0.0, outage_s - (time.monotonic() - begin)))  # the outage's length
            cluster.start()
            return begin, time.monotonic()

        outage, window = asyncio.run(
            steady(url, key, "postgres", seconds=outage_s + 10, concurrency=8, fault=pg_outage, at=3)
        )
        sent += outage
        stall_figures("PostgreSQL outage (pg_ctl stop -m fast, start)", outage, window)

        # 4. Bad characters (NULs first: a surrogate that opens a breaker would hide them),
        # then another tenant's ordinary requests.
        nul = asyncio.run(batch(url, key, [payload(i, content="a\u0000b") for i in range(3)], "nul", 1))
        surrogate = asyncio.run(batch(url, key, [payload(i, content="x\ud800y") for i in range(3)], "bad", 1))
        after = asyncio.run(batch(url, keys["other-tenant"], [payload(i) for i in range(20)], "after-bad", 4))
        sent += nul + surrogate + after
        print(f"NUL: {statuses(nul)}; lone surrogate: {statuses(surrogate)}")
        print(f"another tenant right after: {statuses(after)}")

        # Let the records land, then stop the gateway cleanly (it flushes on the way out).
        records = wait_records(cluster)
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=30)
        records = wait_records(cluster, timeout=10)
        fake.send_signal(signal.SIGTERM)
        fake.wait(timeout=30)
        provider = json.loads(stats_path.read_text())

        gateway_sent = [s for s in sent if s.phase != "warm-up"]
        print(f"\nserved: {sum(s.status == 200 for s in gateway_sent)} of {len(gateway_sent)} requests")
        print(f"errors by status: {statuses([s for s in gateway_sent if s.status != 200]) or 'none'}")
        by_status = (
            cluster.psql("SELECT status, count(*) FROM metrics_callrecord GROUP BY status ORDER BY status")
            .replace("\n", ", ")
            .replace("|", ": ")
        )
        reported = sum(s.attempts for s in sent)
        nul_traces = ",".join(f"'{s.trace}'" for s in nul if s.trace.isalnum()) or "''"
        nul_records = cluster.psql(
            f"SELECT count(*) FROM metrics_callrecord WHERE trace_id IN ({nul_traces})"
        )
        print(f"call records of the {sum(s.status == 200 for s in nul)} NUL requests served: {nul_records}")
        print(
            f"call records: {records} ({by_status}); attempts reported by the gateway: {reported}; "
            f"requests the provider received: {provider['received']} ({dict(provider['kinds'])})"
        )

        dump = subprocess.run(
            ["pg_dump", "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres", "--data-only",
             "orchestrator_probe"],
            capture_output=True, text=True, timeout=120,
        ).stdout  # fmt: skip
        spool = "".join(
            p.read_text(errors="replace") for p in (var_dir / "record-spool").rglob("*") if p.is_file()
        ) if (var_dir / "record-spool").exists() else ""  # fmt: skip
        needles = {
            "provider key": provider_secret,
            "API key": keys["probe"],
            "other API key": keys["other-tenant"],
        }
        scan(
            needles,
            {
                "responses": "\n".join(s.body for s in sent),
                "database (pg_dump)": dump,
                "gateway log": gateway_log.read_text(errors="replace"),
                f"spool files ({sum(1 for p in (var_dir / 'record-spool').rglob('*.seg'))})"
                if (var_dir / "record-spool").exists()
                else "spool files (0)": spool,
            },
        )
        log_text = gateway_log.read_text(errors="replace")
        openings = sum(1 for line in log_text.splitlines() if "circuit for" in line and "opened" in line)
        print(f"circuit openings logged: {openings}")
        tracebacks = log_text.count("Traceback")
        print(f"probe time: {time.monotonic() - started:.0f} s")
        print(
            f"tracebacks in the gateway log: {tracebacks}; its size: {gateway_log.stat().st_size // 1024} KiB"
        )
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                with_cont = proc is procs[0]
                if with_cont:
                    proc.send_signal(signal.SIGCONT)
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if cluster is not None:
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                cluster.stop("immediate")
        if "--keep" in argv:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
