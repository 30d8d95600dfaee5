"""Dashboard and call-log render times at 100k–10M call records, against raw-row baselines.

    python -m bench dashboard                          # SQLite: 100k then 1M records
    python -m bench dashboard --rows=100000 --repeat=10
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/x python -m bench dashboard --rows=1000000,10000000

Runs in a child process on its own database, never the dev one: SQLite
`var/bench_dashboard.sqlite3`, or PostgreSQL database `orchestrator_bench_dashboard` on the
server DATABASE_URL names. Records are generated fast (SQLite executemany, PostgreSQL COPY),
spread over 30 days (more in working hours), 10 models, 5 routes, 3 % errors, a few API keys
and sources; each size adds rows to the previous one, then the rollup runs (timed).

Measured through the Django test client (middleware, view, template: the whole response),
p50/p95 over --repeat loads after one warm-up:
- /dashboard/ for 30 d, 7 d, 24 h and 1 h, and the 30 d htmx fragment;
- /calls/ first page, a deep page (keyset cursor near the oldest record), a filtered deep page.
Baselines side by side: the 30-day figures computed from raw rows (GROUP BY over the window,
what a dashboard without rollups does) and the deep call-log page fetched with OFFSET.
Goals (issue 5): 30-day view p95 <= 300 ms at 10M on PostgreSQL; any call-log page <= 100 ms.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_DB = "orchestrator_bench_dashboard"

MODELS = [
    # name, provider, input $/1K, output $/1K, median latency ms
    ("gpt-4o", "azure-openai", "0.005", "0.015", 900),
    ("gpt-4o-mini", "azure-openai", "0.00015", "0.0006", 350),
    ("claude-3.5-sonnet", "anthropic", "0.003", "0.015", 1100),
    ("claude-3-haiku", "anthropic", "0.00025", "0.00125", 300),
    ("gemini-1.5-pro", "gemini", "0.00125", "0.005", 1000),
    ("gemini-1.5-flash", "gemini", "0.000075", "0.0003", 250),
    ("llama-3-70b", "ollama", "0", "0", 1600),
    ("llama-3-8b", "ollama", "0", "0", 500),
    ("mistral-large", "mistral", "0.002", "0.006", 800),
    ("sim-fast", "simulated-fast", "0.0001", "0.0004", 150),
]
ROUTES = {
    # route → (primary, fallback) models
    "classification": ("gpt-4o-mini", "claude-3-haiku"),
    "code_review": ("claude-3.5-sonnet", "gpt-4o"),
    "complex_reasoning": ("gpt-4o", "gemini-1.5-pro"),
    "sql_generation": ("gpt-4o", "mistral-large"),
    "summarization": ("gemini-1.5-flash", "llama-3-8b"),
}
DIRECT = ["llama-3-70b", "sim-fast", "gpt-4o-mini"]


def _pg_url(base: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{PG_DB}"))


def main(argv: list[str]) -> None:
    opts: dict[str, str] = {}
    for arg in argv:
        name, _, value = arg.lstrip("-").partition("=")
        opts[name] = value or "1"
    base = os.environ.get("DATABASE_URL", "")
    on_pg = base.startswith("postgres")
    default_rows = "1000000,10000000" if on_pg else "100000,1000000"
    sizes = [int(s) for s in opts.get("rows", default_rows).split(",") if s]
    env = dict(os.environ, HTTPS="false", DJANGO_SETTINGS_MODULE="orchestrator_site.settings")
    env.pop("REDIS_URL", None)
    if on_pg:
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [PG_DB]).fetchone()
            if not exists or "fresh" in opts:
                conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}"')
                conn.execute(f'CREATE DATABASE "{PG_DB}"')
        env["DATABASE_URL"] = _pg_url(base)
    else:
        db = ROOT / "var" / "bench_dashboard.sqlite3"
        if "fresh" in opts:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
        env["DATABASE_URL"] = f"sqlite:///{db}"
    print(f"database: {'PostgreSQL ' + PG_DB if on_pg else env['DATABASE_URL']}", flush=True)
    cmd = [sys.executable, "-m", "bench.bench_dashboard", "--child", json.dumps({"sizes": sizes, **opts})]
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)


# --- the child: runs with the bench database as default -----------------------------------


def _setup() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _config() -> tuple[list[int], dict[str, int]]:
    from gateway.models import ApiKey
    from routing.models import ModelConfig, PromptVersion, Provider, ProviderKind, TaskRoute

    for name, provider, pin, pout, _ in MODELS:
        prov, _ = Provider.objects.get_or_create(name=provider, defaults={"kind": ProviderKind.SIMULATED})
        ModelConfig.objects.get_or_create(
            name=name,
            defaults={
                "provider": prov,
                "model_id": name,
                "input_cost_per_1k": Decimal(pin),
                "output_cost_per_1k": Decimal(pout),
            },
        )
    versions = {}
    for task in ROUTES:
        route, _ = TaskRoute.objects.get_or_create(task_type=task)
        pv, _ = PromptVersion.objects.get_or_create(
            route=route, model=None, version=1, defaults={"system_prompt": f"You do {task}."}
        )
        versions[task] = pv.id
    keys = []
    for n in range(5):
        key, _ = ApiKey.objects.get_or_create(
            key_hash=f"bench-{n}", defaults={"name": f"team-{n}", "prefix": f"bk{n}"}
        )
        keys.append(key.id)
    return keys, versions


def _rows(n: int, now: datetime, keys: list[int], versions: dict[str, int], seed: int) -> Any:
    """Yield n CallRecord value dicts spread over the 30 days before now."""
    rng = random.Random(seed)
    by_name = {m[0]: m for m in MODELS}
    span = 30 * 86400
    tasks = list(ROUTES)
    for i in range(n):
        while True:
            when = now - timedelta(seconds=rng.random() * span)
            if 7 <= when.hour < 20 or rng.random() < 0.4:
                break
        pick = rng.random()
        task, chain, step = "", "", None
        if pick < 0.75:
            task = rng.choice(tasks)
            fallback = rng.random() < 0.05
            model = ROUTES[task][1 if fallback else 0]
            chain, step = f"{task}-chain", 1 if fallback else 0
        else:
            model = rng.choice(DIRECT)
        name, provider, pin, pout, median = by_name[model]
        r = rng.random()
        status = "ok" if r >= 0.03 else ("error" if r < 0.02 else "timeout")
        source_pick = rng.random()
        source = "gateway" if source_pick < 0.6 else ("api" if source_pick < 0.9 else "playground")
        tin, tout = rng.randint(50, 4000), rng.randint(10, 1200)
        if status != "ok":
            tout = 0
        cost = None
        if status == "ok" or tin:
            cost = (Decimal(tin) * Decimal(pin) + Decimal(tout) * Decimal(pout)) / 1000
        stream = rng.random() < 0.2
        latency = rng.lognormvariate(0, 0.45) * median
        yield {
            "trace_id": f"{seed:02x}{i:030x}",
            "source": source,
            "role": "primary" if step != 1 else "fallback",
            "task_type": task,
            "chain_name": chain,
            "chain_step": step,
            "prompt_version_id": versions.get(task),
            "model_name": name,
            "provider_name": provider,
            "provider_kind": "simulated",
            "provider_model_id": name,
            "api_key_id": rng.choice(keys) if source == "gateway" else None,
            "attempt": 1,
            "status": status,
            "error_class": "" if status == "ok" else "transient",
            "http_status": None if status == "ok" else 503,
            "error_message": "" if status == "ok" else "HTTP 503: overloaded",
            "latency_ms": 30_000.0 if status == "timeout" else latency,
            "ttft_ms": latency * rng.uniform(0.1, 0.4) if stream and status == "ok" else None,
            "stream": stream,
            "input_tokens": tin,
            "output_tokens": tout,
            "cached_tokens": 0,
            "route_id": None,
            "model_id": None,
            "cost_usd": cost.quantize(Decimal("1e-10")) if cost is not None else None,
            "input_price_per_1k": Decimal(pin),
            "output_price_per_1k": Decimal(pout),
            "price_source": "override",
            "request_text": "",
            "response_text": "",
            "simulated": True,
            "created_at": when,
        }


def _load(n: int, now: datetime, keys: list[int], versions: dict[str, int], seed: int) -> float:
    from django.db import connection, transaction

    from metrics.models import CallRecord

    fields = [f for f in CallRecord._meta.concrete_fields if not f.primary_key]
    columns = [str(f.column) for f in fields]
    names = [f.attname for f in fields]
    table = CallRecord._meta.db_table
    started = time.monotonic()
    rows = _rows(n, now, keys, versions, seed)
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            raw = cur.cursor  # the psycopg cursor
            with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[name] for name in names])
        connection.cursor().execute(f"ANALYZE {table}")
    else:
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        batch: list[list[Any]] = []
        with transaction.atomic(), connection.cursor() as cur:
            for row in rows:
                batch.append([_sqlite_value(row[name]) for name in names])
                if len(batch) >= 20_000:
                    cur.executemany(sql, batch)
                    batch.clear()
            if batch:
                cur.executemany(sql, batch)
        connection.cursor().execute("ANALYZE")
    return time.monotonic() - started


def _sqlite_value(v: Any) -> Any:
    """What Django would bind on SQLite, without a field lookup per value."""
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    if isinstance(v, Decimal):
        return str(v)
    return v


def _time(fn: Any, repeat: int) -> tuple[float, float]:
    fn()  # warm-up
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, max(0, round(0.95 * len(samples)) - 1))]
    return statistics.median(samples), p95


def _baseline_30d_from_raw() -> None:
    """What the 30-day view costs without rollups: the same figures GROUP BY over raw rows."""
    from django.db.models import Avg, Count, Q, Sum
    from django.db.models.functions import TruncDay
    from django.utils import timezone

    from metrics.models import CallRecord

    start = timezone.now() - timedelta(days=30)
    qs = CallRecord.objects.filter(created_at__gte=start).order_by()
    err = Count("id", filter=Q(status__in=["error", "timeout"]))
    list(qs.values("model_name").annotate(n=Count("id"), c=Sum("cost_usd"), lat=Avg("latency_ms"), e=err))
    list(
        qs.annotate(d=TruncDay("created_at"))
        .values("d", "model_name")
        .annotate(n=Count("id"), c=Sum("cost_usd"), e=err, i=Sum("input_tokens"), o=Sum("output_tokens"))
    )
    for dim in ("task_type", "provider_name", "api_key_id", "prompt_version_id", "source"):
        list(qs.values(dim).annotate(n=Count("id"), c=Sum("cost_usd"), e=err))
    # Percentiles need every latency of the window (no PERCENTILE_CONT on SQLite).
    for _ in qs.values_list("model_name", "latency_ms").iterator(chunk_size=20_000):
        pass


def child(opts: dict[str, Any]) -> None:
    _setup()
    from django.contrib.auth import get_user_model
    from django.db.models import Q
    from django.test import Client
    from django.utils import timezone

    from metrics.models import CallRecord
    from metrics.rollups import rollup_reset, rollup_run
    from metrics.selectors.calls import cursor_encode

    repeat = int(opts.get("repeat", 20))
    keys, versions = _config()
    user, _ = get_user_model().objects.get_or_create(username="bench")
    client = Client()
    client.force_login(user)
    now = timezone.now()
    results = []
    for size in opts["sizes"]:
        have = CallRecord.objects.count()
        load_s = 0.0
        if have < size:
            print(f"\n-- loading {size - have:,} records (to {size:,}) …", flush=True)
            load_s = _load(size - have, now, keys, versions, seed=have % 251)
        have = CallRecord.objects.count()
        t = time.monotonic()
        if "rebuild" in opts and size == opts["sizes"][0]:
            rollup_reset()
        rolled = rollup_run(worker="bench")
        rollup_s = time.monotonic() - t
        from metrics.models import CallRollup

        rollup_rows = CallRollup.objects.count()
        print(
            f"{have:,} records: loaded in {load_s:.1f}s; rollup {rollup_s:.1f}s "
            f"({rolled.records_seen:,} records read, {rollup_rows:,} rollup rows)",
            flush=True,
        )
        oldest = CallRecord.objects.order_by("created_at", "id")[500]
        deep = cursor_encode(oldest)
        beta = (
            CallRecord.objects.filter(model_name="gpt-4o")
            .order_by("created_at", "id")
            .only("id", "created_at")[200]
        )
        deep_filtered = cursor_encode(beta)
        depth = CallRecord.objects.filter(created_at__gt=oldest.created_at).count()

        def get(url: str, **headers: Any) -> Any:
            def run() -> None:
                response = client.get(url, **headers)
                assert response.status_code == 200, (url, response.status_code)

            return run

        def offset_page(depth: int = depth) -> None:
            list(CallRecord.objects.order_by("-created_at", "-id")[depth : depth + 50])

        def keyset_page(oldest: Any = oldest) -> None:
            when, ident = oldest.created_at, oldest.id
            list(
                CallRecord.objects.order_by("-created_at", "-id")
                .filter(created_at__lte=when)
                .exclude(Q(created_at=when) & Q(id__gte=ident))[:51]
            )

        cases = [
            ("dashboard 30d", get("/dashboard/?range=30d"), "raw GROUP BY 30d", _baseline_30d_from_raw),
            ("dashboard 30d htmx fragment", get("/dashboard/?range=30d", HTTP_HX_REQUEST="true"), None, None),
            ("dashboard 30d model=gpt-4o", get("/dashboard/?range=30d&model=gpt-4o"), None, None),
            ("dashboard 7d", get("/dashboard/?range=7d"), None, None),
            ("dashboard 24h", get("/dashboard/?range=24h"), None, None),
            ("dashboard 1h", get("/dashboard/?range=1h"), None, None),
            ("calls first page", get("/calls/"), None, None),
            (f"calls deep page (~{depth:,} newer)", get(f"/calls/?before={deep}"), None, None),
            ("  its keyset query alone", keyset_page, "OFFSET query, same depth", offset_page),
            ("calls deep page model=gpt-4o", get(f"/calls/?model=gpt-4o&before={deep_filtered}"), None, None),
        ]
        print(
            f"{'view':44} {'p50 ms':>9} {'p95 ms':>9}   {'baseline':28} {'p50 ms':>9} {'p95 ms':>9} {'ratio p50':>9}"
        )
        for label, fn, base_label, base_fn in cases:
            p50, p95 = _time(fn, repeat)
            line = f"{label:44} {p50:9.1f} {p95:9.1f}"
            if base_fn is not None:
                b50, b95 = _time(base_fn, max(3, repeat // 4))
                line += f"   {base_label:28} {b50:9.1f} {b95:9.1f} {b50 / p50:8.1f}x"
                results.append(
                    {"size": have, "view": label, "p50": p50, "p95": p95, "base_p50": b50, "base_p95": b95}
                )
            else:
                results.append({"size": have, "view": label, "p50": p50, "p95": p95})
            print(line, flush=True)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    from django.db import connection

    (out / f"dashboard-{connection.vendor}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(json.loads(sys.argv[2]))
    else:
        main(sys.argv[1:])
