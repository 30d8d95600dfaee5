"""Compare runs and drills on REAL Celery workers over Redis (the PostgreSQL/Redis pass).

Each test starts `celery -A orchestrator_site worker` as a subprocess pointed at this test
run's database, on queues named for this test alone, and waits on database conditions with
deadlines (no sleeps as synchronisation).
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.urls import reverse

from compare.models import CellStatus, CompareCell, CompareRun, Drill, RunStatus
from compare.services.drills import FaultInput, drill_launch
from compare.services.runs import run_cancel
from metrics.models import CallRecord
from tests.compare.conftest import make_run, simulated_model

REDIS_URL = os.environ.get("REDIS_URL", "")
pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.skipif(
        not REDIS_URL, reason="needs REDIS_URL: real Celery workers run in the PostgreSQL/Redis pass"
    ),
    pytest.mark.django_db(transaction=True),
]
CELERY = str(Path(sys.executable).parent / "celery")
CELL_TIME_LIMIT_S = 4  # the workers' claim lease is this plus 4 s


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)  # polling interval of a bounded wait, not synchronisation


def database_url() -> str:
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Workers:
    def __init__(self, prefix: str, log_dir: Path) -> None:
        self.prefix = prefix
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []

    def start(self, *, concurrency: int = 2, env: dict[str, str] | None = None) -> subprocess.Popen:
        index = len(self.procs)
        log_path = self.log_dir / f"worker-{index}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "orchestrator_site.settings_test",
            "DATABASE_URL": database_url(),
            "REDIS_URL": REDIS_URL,
            "CELERY_QUEUE_PREFIX": self.prefix,
            "COMPARE_CELL_TIME_LIMIT_S": str(CELL_TIME_LIMIT_S),
            # Hand a dead worker's unacknowledged messages to the next worker quickly.
            "CELERY_VISIBILITY_TIMEOUT_S": "3",
            "CELERY_UNACKED_RESTORE_INTERVAL_S": "1",
            "CELERY_UNACKED_RESTORE_THROTTLE": "1",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        queues = f"{self.prefix}cells,{self.prefix}drills"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [CELERY, "-A", "orchestrator_site", "worker", "--pool=threads", f"--concurrency={concurrency}",
                 "-Q", queues, "-n", f"w{index}-{self.prefix}@%h", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "--loglevel=INFO"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.procs.append(proc)
        wait_for(
            lambda: proc.poll() is not None or " ready." in log_path.read_text(),
            timeout=60,
            what="the worker to start",
        )
        assert proc.poll() is None, f"worker exited early:\n{log_path.read_text()[-3000:]}"
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL, as when a machine dies: no warm shutdown, no acknowledgements."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in sorted(self.log_dir.glob("worker-*.log")))


@pytest.fixture
def workers(settings, tmp_path):
    """Workers on queues no other test run uses; the test process sends to the same ones."""
    from orchestrator_site.celery import app

    prefix = f"t{os.getpid()}-{uuid.uuid4().hex[:6]}-"
    settings.CELERY_QUEUES_BY_PURPOSE = {
        p: f"{prefix}{p}" for p in ("default", "cells", "drills", "periodic")
    }
    saved = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager = False
    app.conf.broker_url = REDIS_URL
    pool = Workers(prefix, tmp_path)
    yield pool
    pool.stop_all()
    app.conf.task_always_eager, app.conf.broker_url = saved
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*[f"{prefix}{q}" for q in ("cells", "drills")])
    connection.close()  # the workers' connections are gone; let the test database be flushed


def run_state(run: CompareRun):
    run.refresh_from_db()
    return run.status


def billed_once(run: CompareRun) -> None:
    for cell in CompareCell.objects.filter(run=run):
        ok = CallRecord.objects.filter(trace_id=cell.trace_id, status="ok").count()
        assert ok <= 1, f"cell {cell.pk} was billed {ok} times"
        if cell.status == CellStatus.DONE:
            assert ok == 1 and cell.call_record_id is not None


def test_a_run_completes_with_every_cell_on_a_real_worker(workers):
    simulated_model("w-a", provider="w-1", latency_ms_mean=20)
    simulated_model("w-b", provider="w-2", latency_ms_mean=20)
    workers.start()
    run = make_run(inputs=[f"question {i}" for i in range(4)], candidates=["model:w-a", "model:w-b"])
    wait_for(lambda: run_state(run) != RunStatus.RUNNING, timeout=60, what="the run to finish")
    assert run.status == RunStatus.DONE, workers.logs()
    assert set(CompareCell.objects.filter(run=run).values_list("status", flat=True)) == {CellStatus.DONE}
    assert CompareCell.objects.filter(run=run).count() == 8
    billed_once(run)


def test_the_spend_cap_stops_a_run_on_a_real_worker(workers):
    # Each cell reserves ≈ $0.000022 and costs ≈ $0.000018: a $0.0001 cap stops it early.
    simulated_model("w-priced", provider="w-3", latency_ms_mean=20)
    workers.start()
    run = make_run(
        inputs=[f"prompt {i}" for i in range(12)],
        candidates=["model:w-priced"],
        max_tokens=8,
        spend_cap="0.0001",
    )
    wait_for(lambda: run_state(run) != RunStatus.RUNNING, timeout=60, what="the run to stop")
    wait_for(
        lambda: not CompareCell.objects.filter(run=run, status=CellStatus.RUNNING).exists(),
        timeout=30,
        what="in-flight cells to finish",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.CAPPED
    done = list(CompareCell.objects.filter(run=run, status=CellStatus.DONE))
    assert 1 <= len(done) < 12
    assert run.spent_usd <= Decimal("0.0001")
    traces = CompareCell.objects.filter(run=run).values_list("trace_id", flat=True)
    recorded = sum(r.cost_usd for r in CallRecord.objects.filter(trace_id__in=list(traces)))
    assert recorded == run.spent_usd == sum(c.cost_usd for c in done)


def test_cancel_stops_a_run_on_a_real_worker(workers):
    simulated_model("w-slow", provider="w-4", latency_ms_mean=300)
    workers.start(concurrency=1)
    run = make_run(inputs=[f"prompt {i}" for i in range(10)], candidates=["model:w-slow"])
    wait_for(
        lambda: CompareCell.objects.filter(run=run, status=CellStatus.DONE).exists(),
        timeout=60,
        what="a first cell",
    )
    assert run_cancel(run=run) is True
    wait_for(
        lambda: (
            not CompareCell.objects.filter(
                run=run, status__in=[CellStatus.RUNNING, CellStatus.PENDING]
            ).exists()
        ),
        timeout=30,
        what="open cells to settle",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    cancelled = CompareCell.objects.filter(run=run, status=CellStatus.CANCELLED)
    assert cancelled.count() >= 1
    assert not CallRecord.objects.filter(
        trace_id__in=list(cancelled.values_list("trace_id", flat=True))
    ).exists()
    # Messages still queued for cancelled cells are consumed without calling anything.
    wait_for(
        lambda: not redis.Redis.from_url(REDIS_URL).llen(f"{workers.prefix}cells"),
        timeout=30,
        what="the queue to drain",
    )
    assert (
        CallRecord.objects.filter(source="batch").count()
        == CompareCell.objects.filter(run=run, status=CellStatus.DONE).count()
    )


def test_a_worker_killed_mid_run_hands_its_slots_and_cells_over_within_seconds(workers):
    # The provider takes 2 calls at once and the killed worker held both slots and 2 claims.
    # Their lease without renewal is the cells' time limit plus margins (132 s here); with a
    # 0.5 s heartbeat they lapse 2 s after the kill.
    env = {
        "COMPARE_CELL_TIME_LIMIT_S": "120",
        "COMPARE_WORKER_HEARTBEAT_MS": "500",
        "COMPARE_PROVIDER_CONCURRENCY": "2",
    }
    simulated_model("w-steady", provider="w-5", latency_ms_mean=400, latency_ms_jitter=0)
    first = workers.start(concurrency=2, env=env)
    run = make_run(inputs=[f"prompt {i}" for i in range(12)], candidates=["model:w-steady"])
    wait_for(
        lambda: (
            CompareCell.objects.filter(run=run, status=CellStatus.DONE).count() >= 2
            and CompareCell.objects.filter(run=run, status=CellStatus.RUNNING).exists()
        ),
        timeout=60,
        what="the run to be under way",
    )
    workers.kill(first)
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
    # Cells still marked running now were held by the dead worker: their claims must lapse.
    orphaned = list(
        CompareCell.objects.filter(run=run, status=CellStatus.RUNNING).values_list("id", flat=True)
    )
    assert orphaned
    workers.start(concurrency=2, env=env)
    wait_for(
        lambda: run_state(run) != RunStatus.RUNNING,
        timeout=40,  # far below the 132 s lease the dead worker's slots and claims had
        what="the run to finish on the new worker",
    )
    assert run.status == RunStatus.DONE, workers.logs()
    cells = list(CompareCell.objects.filter(run=run))
    assert len(cells) == 12 and {c.status for c in cells} == {CellStatus.DONE}
    billed_once(run)
    for cell in cells:  # each cell ran once: no second call, not even a failed one
        assert CallRecord.objects.filter(trace_id=cell.trace_id).count() == 1, f"cell {cell.pk}"
    assert run.spent_usd == sum(c.cost_usd for c in cells)
    for cell in CompareCell.objects.filter(pk__in=orphaned):
        assert cell.claims >= 2, f"cell {cell.pk} finished without being reclaimed"
    new_worker_log = (workers.log_dir / "worker-1.log").read_text()
    retries = new_worker_log.count(" retry: Retry in")
    assert retries <= 2 * len(cells), f"{retries} task retries on the new worker"


def test_a_broker_down_at_launch_gives_a_clear_error_and_no_run(member_client, db, settings):
    from orchestrator_site.celery import app

    simulated_model("w-any", provider="w-6")
    saved = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url = "redis://127.0.0.1:9/0"  # nothing listens there
    app.conf.task_always_eager = False
    try:
        response = member_client.post(
            reverse("compare:create"),
            {
                "prompts_format": "lines",
                "prompts_text": "a\nb",
                "max_tokens": "8",
                "candidates": ["model:w-any"],
            },
        )
    finally:
        app.conf.broker_url, app.conf.task_always_eager = saved
    assert response.status_code == 400
    assert "The task queue is unreachable" in response.content.decode()
    assert CompareRun.objects.count() == 0 and CompareCell.objects.count() == 0


def test_a_drill_runs_as_a_task_on_a_real_worker(workers, seed_default_chain, staff_user):
    workers.start()
    drill = drill_launch(
        drill_kwargs={
            "user": staff_user,
            "target_kind": "chain",
            "target": "default",
            "faults": [FaultInput("gpt-4o", "server_error", 1.0)],
            "requests": 6,
            "concurrency": 2,
        }
    )

    def finished():
        drill.refresh_from_db()
        return drill.status in ("done", "failed")

    wait_for(finished, timeout=60, what="the drill to finish")
    assert drill.status == "done", drill.error or workers.logs()
    assert drill.report["served_by"] == {"claude-3.5-sonnet": 6}
    assert Drill.objects.get().success_rate == 1.0


def test_two_workers_share_one_run(workers):
    simulated_model("w-shared", provider="w-7", latency_ms_mean=150, latency_ms_jitter=0)
    workers.start(concurrency=2)
    workers.start(concurrency=2)
    run = make_run(inputs=[f"prompt {i}" for i in range(16)], candidates=["model:w-shared"])
    wait_for(lambda: run_state(run) != RunStatus.RUNNING, timeout=60, what="the run to finish")
    assert run.status == RunStatus.DONE, workers.logs()
    names = set(CompareCell.objects.filter(run=run).values_list("worker", flat=True))
    assert len(names) == 2 and all(name.startswith(("w0-", "w1-")) for name in names)
    billed_once(run)
