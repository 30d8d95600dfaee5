"""Call records spread over time with varied dimensions, and exact figures from raw rows."""

import math
import os
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from metrics.models import CallRecord, CallStatus, Source
from metrics.rollups import rollup_run
from tests.factories import ModelConfigFactory, TaskRouteFactory

MODELS = ["alpha", "beta", "gamma"]
ROUTES = ["summarize", "code_review", ""]
STATUSES = [CallStatus.OK] * 12 + [CallStatus.ERROR, CallStatus.TIMEOUT, CallStatus.CANCELLED]


def make_records(n: int, *, start: datetime, span: timedelta, seed: int = 7, **fixed) -> list[CallRecord]:
    """n records at random instants in [start, start + span), saved with bulk_create."""
    rng = random.Random(seed)
    objs = []
    for i in range(n):
        model = rng.choice(MODELS)
        priced = rng.random() < 0.9
        objs.append(
            CallRecord(
                trace_id=f"t{seed}-{i}",
                model_name=model,
                provider_name=f"prov-{model}",
                task_type=rng.choice(ROUTES),
                source=rng.choice([Source.SIMULATION, Source.API, Source.GATEWAY]),
                status=rng.choice(STATUSES),
                chain_name=rng.choice(["", "default"]),
                chain_step=rng.choice([None, 0, 1]),
                latency_ms=None if rng.random() < 0.05 else rng.lognormvariate(6, 1.0),
                ttft_ms=rng.lognormvariate(5, 0.7) if rng.random() < 0.3 else None,
                input_tokens=rng.randint(1, 2000),
                output_tokens=rng.randint(0, 800),
                cost_usd=Decimal(rng.randint(1, 10**6)) / Decimal(10**9) if priced else None,
                price_source="catalogue" if priced else "unknown",
                created_at=start + timedelta(seconds=rng.uniform(0, span.total_seconds())),
                **fixed,
            )
        )
    return CallRecord.objects.bulk_create(objs, batch_size=1000)


def exact_percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile: the ceil(p/100 × n)-th smallest value."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC)


def subprocess_env(var_dir) -> dict[str, str]:
    """The environment of a Python subprocess that sets Django up (production settings) against
    the test database, with `var_dir` as its ORCHESTRATOR_VAR_DIR."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "orchestrator_site.settings",
        "DATABASE_URL": url,
        "ORCHESTRATOR_VAR_DIR": str(var_dir),
        "REDIS_URL": "",
        "HTTPS": "false",
    }


@pytest.fixture
def config(db):
    for name in ("alpha", "beta", "gamma"):
        ModelConfigFactory(name=name)
    TaskRouteFactory(task_type="summarize")
    TaskRouteFactory(task_type="code_review")


@pytest.fixture
def traffic(config, now):
    records = make_records(600, start=now - timedelta(days=29), span=timedelta(days=29))
    rollup_run()
    return records
