"""What a running compare run's and drill's pages show, fed by REAL Celery workers over Redis
(the PostgreSQL/Redis pass): cells arrive while the run goes, a drill counts as it goes."""

import re

import pytest
from django.urls import reverse

from compare.models import CellStatus, CompareCell, Drill, DrillStatus, RunStatus
from compare.services.drills import FaultInput, drill_launch
from tests.compare.conftest import make_run, simulated_model
from tests.compare.test_worker import REDIS_URL, run_state, wait_for, workers  # noqa: F401  (fixture)
from tests.factories import FallbackChainFactory

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.skipif(
        not REDIS_URL, reason="needs REDIS_URL: real Celery workers run in the PostgreSQL/Redis pass"
    ),
    pytest.mark.django_db(transaction=True),
]
HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_progress_fragment_brings_cells_a_real_worker_finished_while_the_run_goes(
    workers,  # noqa: F811
    member_client,
):
    simulated_model("w-steady", provider="w-6", latency_ms_mean=250, latency_ms_jitter=0)
    workers.start(concurrency=1)
    run = make_run(inputs=[f"question {i}" for i in range(12)], candidates=["model:w-steady"])
    url = reverse("compare:progress", args=[run.pk])
    since = re.search(r'"since": "([^"]+)"', member_client.get(url, **HTMX).content.decode()).group(1)

    def done_cells_while_running():
        body = member_client.get(url, {"since": since}, **HTMX).content.decode()
        done = re.findall(
            r'<td id="cmp-cell-(\d+)" hx-swap-oob="true" data-cell="\d+" data-status="done"', body
        )
        return done if done and 'data-status="running"' in body.split("<template>")[0] else None

    arrived = wait_for(done_cells_while_running, timeout=60, what="cells to arrive while the run goes")
    assert run_state(run) == RunStatus.RUNNING
    assert CompareCell.objects.filter(pk__in=arrived, status=CellStatus.DONE).count() == len(arrived)
    wait_for(lambda: run_state(run) != RunStatus.RUNNING, timeout=60, what="the run to finish")
    assert run.status == RunStatus.DONE, workers.logs()


def test_a_drill_on_a_real_worker_counts_requests_and_errors_as_it_goes(
    workers,  # noqa: F811
    staff_client,
):
    model = simulated_model("w-drilled", provider="w-7", latency_ms_mean=200, latency_ms_jitter=0)
    FallbackChainFactory(name="drilled", models=[model])
    workers.start(concurrency=1)
    drill = drill_launch(
        drill_kwargs={
            "user": None,
            "target_kind": "chain",
            "target": "drilled",
            "faults": [FaultInput("w-drilled", "server_error", 0.5)],
            "requests": 20,
            "concurrency": 1,
        }
    )
    url = reverse("compare:drill", args=[drill.pk])

    def counting():
        drill.refresh_from_db()
        body = staff_client.get(url, **HTMX).content.decode()
        found = re.search(r"(\d+) / 20 requests done", body)
        return (
            body if drill.status == DrillStatus.RUNNING and found and 0 < int(found.group(1)) < 20 else None
        )

    body = wait_for(counting, timeout=60, what="the drill page to count requests while it runs")
    assert re.search(r"\d+ errors? so far", body) and ("s left" in body or "min left" in body)
    wait_for(lambda: Drill.objects.get(pk=drill.pk).status == DrillStatus.DONE, timeout=90, what="the drill")
