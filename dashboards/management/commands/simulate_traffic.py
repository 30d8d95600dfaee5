"""Demo traffic through the real engine, backdated over the last days.

    python manage.py simulate_traffic --days 30 --requests 2000

Every request goes through `routing.orchestrator` (routes with their prompts and fallback
chains, direct model calls, the flaky-demo chain) with source="simulation" and a
`created_at` spread over the window (more traffic in working hours), against the simulated
models' own latency and failure settings. Models that need a key you have not set are
skipped by the engine as usual, so the chains fall through to the simulated models. Ends
by rolling the records up so the dashboards show them at once.

It lives in dashboards, the top layer: it drives the engine (routing) and rolls up the
records (metrics) to fill the dashboards, so it sits above both.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from metrics.rollups import rollup_run
from routing import orchestrator
from routing.errors import OrchestratorError
from routing.models import FallbackChain, ModelConfig, ProviderKind, TaskRoute

# Realistic prompts for each default route (config/defaults.yaml), in the shape the simulated
# models read: tickets for the classifier, code with a bug for the reviewer, reports to
# summarise, A-or-B decisions, questions about data for SQL. CHAT goes to direct calls.
PROMPTS = {
    "classification": [
        "Invoice #4411 is overdue by 30 days.",
        "My parcel never arrived and the tracking page has not changed since Monday.",
        "Great product, thanks! The new dashboard saves me an hour a week.",
        "The app crashes with error 500 every time I log in.",
        "Please delete my account and the email address linked to it.",
        "I was charged twice for the same order, please refund one payment.",
    ],
    "code_review": [
        "def add(a, b):\n    return a - b",
        "for i in range(len(xs)):\n    print(xs[i])",
        "def load(path, cache=[]):\n    try:\n        cache.append(open(path).read())\n    except:\n        pass\n"
        "    return cache",
        "def find_user(db, name):\n    return db.execute(f\"SELECT * FROM users WHERE name = '{name}'\")",
        "def is_empty(value):\n    return value == None",
    ],
    "summarization": [
        "Quarterly revenue grew 12% while costs fell; churn rose slightly in EMEA.",
        "The checkout service failed for 14 minutes on Tuesday. A configuration change doubled the "
        "connection pool and exhausted the database's connection limit. The on-call engineer rolled "
        "the change back. Errors stopped within a minute. The team will add a limit check to the "
        "deploy pipeline.",
        "Customers asked for dark mode in 40 tickets this month. Design has a prototype ready. "
        "Engineering estimates two sprints of work. Support expects fewer complaints once it ships. "
        "Marketing wants to announce it at the spring event.",
    ],
    "complex_reasoning": [
        "Should we shard the orders table or add read replicas first? Traffic doubles yearly.",
        "Should we rewrite the billing service in Go or optimise the Python one? p95 latency is 900 ms.",
        "Is it better to cache product pages at the CDN or in Redis? 80% of traffic is anonymous.",
        "Should we hire a second SRE or buy a managed database? The team of four is on call weekly.",
    ],
    "sql_generation": [
        "Top 10 customers by revenue last quarter, with their region.",
        "Top 5 products by units sold last month.",
        "Top 20 customers by number of orders in the last 30 days, with their email.",
        "Top 3 stores by sales last year, with their city.",
    ],
}
CHAT = [
    "What is 17 * 23?",
    "What is 144 / 12 + 7?",
    "Calculate (18 + 24) * 3.",
    "What is 15% of 240? Answer with just the number.",
    "What is the capital of Australia?",
    "What is the chemical symbol for gold?",
    "Write a haiku about latency.",
    "Name three uses of a hash map.",
    "Write a Python function that checks whether a string is a palindrome.",
    "Classify the sentiment as positive, negative or neutral. Text: The update broke my workflow.",
    "What is 19 * 21? Reply in JSON with fields answer and reason.",
    "Explain how a connection pool works.",
]


def _instant(rng: random.Random, now: datetime, days: float) -> datetime:
    """A moment in the last `days`, weighted towards working hours (local time of the server)."""
    while True:
        when = now - timedelta(seconds=rng.uniform(0, days * 86400))
        hour = timezone.localtime(when).hour
        weight = 1.0 if 8 <= hour < 19 else 0.35
        if timezone.localtime(when).weekday() >= 5:
            weight *= 0.4
        if rng.random() < weight:
            return when


class Command(BaseCommand):
    help = "Send simulated requests through the real engine, backdated over the last N days."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=float, default=30.0)
        parser.add_argument("--requests", type=int, default=1000)
        parser.add_argument("--concurrency", type=int, default=128)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--no-rollup", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        days, requests, concurrency = opts["days"], opts["requests"], opts["concurrency"]
        if not (0 < days <= 400):
            raise CommandError("--days must be between 0 and 400.")
        if not (0 < requests <= 1_000_000):
            raise CommandError("--requests must be between 1 and 1,000,000.")
        if not (1 <= concurrency <= 512):
            raise CommandError("--concurrency must be between 1 and 512.")
        routes = list(TaskRoute.objects.filter(enabled=True).values_list("task_type", flat=True))
        # Direct calls go to simulated models that never hang (a hang waits out the full call
        # timeout); the hanging ones are still exercised through chains, whose steps time out.
        sim_models = [
            name
            for name, options in ModelConfig.objects.filter(
                enabled=True, provider__kind=ProviderKind.SIMULATED
            ).values_list("name", "provider__options")
            if "hang" not in (options or {}).get("failure_kinds", [])
        ]
        chains = list(FallbackChain.objects.values_list("name", flat=True))
        if not routes and not sim_models:
            raise CommandError(
                "No routes or simulated models configured: run `python manage.py import_config "
                "config/defaults.yaml` first."
            )
        rng = random.Random(opts["seed"])
        now = timezone.now()
        started = time.monotonic()
        ok, failed = asyncio.run(self._run(rng, now, days, requests, concurrency, routes, sim_models, chains))
        self.stdout.write(
            f"Sent {requests:,} requests ({ok:,} answered, {failed:,} failed after fallbacks) "
            f"in {time.monotonic() - started:.1f}s."
        )
        if not opts["no_rollup"]:
            result = rollup_run(worker="simulate_traffic")
            if result.ran:
                self.stdout.write(f"Rolled up {result.records_seen:,} records in {result.seconds:.1f}s.")
            else:
                self.stdout.write(
                    "The worker is rolling up right now: the dashboards catch up within a minute."
                )
        self.stdout.write("Open /dashboard/?range=30d to see them.")

    async def _run(
        self,
        rng: random.Random,
        now: datetime,
        days: float,
        requests: int,
        concurrency: int,
        routes: list[str],
        sim_models: list[str],
        chains: list[str],
    ) -> tuple[int, int]:
        gate = asyncio.Semaphore(concurrency)
        counts = {"ok": 0, "failed": 0, "done": 0}
        plans = []
        for _ in range(requests):
            kind = rng.random()
            when = _instant(rng, now, days)
            if routes and kind < 0.6:
                task = rng.choice(routes)
                plans.append(("route", task, rng.choice(PROMPTS.get(task, CHAT)), when))
            elif "flaky-demo" in chains and kind < 0.75:
                plans.append(("chain", "flaky-demo", rng.choice(CHAT), when))
            elif sim_models:
                plans.append(("model", rng.choice(sim_models), rng.choice(CHAT), when))
            else:
                task = rng.choice(routes)
                plans.append(("route", task, rng.choice(PROMPTS.get(task, CHAT)), when))

        async def one(plan: tuple[str, str, str, datetime]) -> None:
            kind, target, text, when = plan
            common = {"source": "simulation", "created_at": when}
            async with gate:
                try:
                    if kind == "route":
                        await orchestrator.aroute(target, text, **common)
                    elif kind == "chain":
                        await orchestrator.aexecute_with_fallback(
                            [{"role": "user", "content": text}], chain=target, **common
                        )
                    else:
                        await orchestrator.acomplete(
                            [{"role": "user", "content": text}], model=target, **common
                        )
                    counts["ok"] += 1
                except OrchestratorError:
                    counts["failed"] += 1
                counts["done"] += 1
                if counts["done"] % 500 == 0:
                    self.stdout.write(f"  {counts['done']:,}/{requests:,}…")

        await asyncio.gather(*(one(p) for p in plans))
        await orchestrator.arecords_flush()
        return counts["ok"], counts["failed"]
