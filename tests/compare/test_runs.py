"""Compare runs with tasks run inline (the SQLite pass), calling a fake provider through the real SDKs."""

from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from compare.assertions import AssertionSpec
from compare.models import CellStatus, CompareCell, CompareRun, RunStatus
from compare.parsing import PromptRow
from compare.services import cells as cell_service
from compare.services import sweep
from compare.services.queueing import QueueUnavailable
from compare.services.runs import CompareInputError, candidates_parse, run_cancel, run_estimate
from compare.tasks import cell_execute
from metrics.models import CallRecord
from routing import orchestrator
from routing.models import Capability, PromptVersion
from tests.compare.conftest import make_run, simulated_model
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def two_models(fake_provider):
    a = fake_provider.model("fp-a", input_cost_per_1k=Decimal("0.01"), output_cost_per_1k=Decimal("0.02"))
    b = fake_provider.model("fp-b", input_cost_per_1k=Decimal("0.001"), output_cost_per_1k=Decimal("0.002"))
    return a, b


def launch(capture, **kwargs):
    with capture(execute=True):
        run = make_run(**kwargs)
    run.refresh_from_db()
    return run


def test_a_run_completes_with_every_cell(
    eager_celery, django_capture_on_commit_callbacks, two_models, fake_provider
):
    run = launch(
        django_capture_on_commit_callbacks,
        inputs=["one", "two", "three"],
        candidates=["model:fp-a", "model:fp-b"],
    )
    assert run.status == RunStatus.DONE
    cells = list(CompareCell.objects.filter(run=run))
    assert len(cells) == 6
    assert {c.status for c in cells} == {CellStatus.DONE}
    # The fake server echoes the prompt: each cell holds its own prompt's answer.
    assert all(c.output == f"Echo: {c.prompt.input}" for c in cells)
    assert len(fake_provider.history) == 6
    for cell in cells:
        record = CallRecord.objects.get(trace_id=cell.trace_id)
        assert record.pk == cell.call_record_id
        assert record.source == "batch"
        assert record.cost_usd == cell.cost_usd
    assert run.spent_usd == sum(c.cost_usd for c in cells)
    assert run.reserved_usd == 0


def test_the_estimate_prices_tokens_and_flags_unknown_prices(db, two_models, fake_provider):
    fake_provider.model("fp-unpriced")
    rows = [PromptRow(input="x" * 400)]
    specs = candidates_parse(values=["model:fp-a", "model:fp-unpriced"], rows=rows)
    estimate = run_estimate(rows=rows, candidates=specs, assertions=[], max_tokens=100)
    # 400 chars ≈ 104 tokens in at $0.01/1K, 100 out at $0.02/1K.
    assert estimate.per_candidate[0]["cost_usd"] == Decimal("0.00104") + Decimal("0.002")
    assert estimate.per_candidate[1]["cost_usd"] is None
    assert estimate.incomplete is True


def test_the_spend_cap_stops_the_run(eager_celery, django_capture_on_commit_callbacks, two_models):
    # A cell reserves ≈ $0.00014 before calling (6 tokens in, 4 out at most) and really
    # costs ≈ $0.00008, so a $0.0004 cap lets a few cells run, then stops the rest.
    run = launch(
        django_capture_on_commit_callbacks,
        inputs=[f"prompt {i}" for i in range(10)],
        candidates=["model:fp-a"],
        spend_cap="0.0004",
        max_tokens=4,
    )
    assert run.status == RunStatus.CAPPED
    done = CompareCell.objects.filter(run=run, status=CellStatus.DONE)
    skipped = CompareCell.objects.filter(run=run, status=CellStatus.SKIPPED)
    assert 1 <= done.count() < 10
    assert done.count() + skipped.count() == 10
    assert run.spent_usd <= Decimal("0.0004")
    assert run.spent_usd == sum(c.cost_usd for c in done)
    # Only the cells that ran were called and billed.
    assert CallRecord.objects.filter(source="batch").count() == done.count()
    assert set(skipped.values_list("error", flat=True)) == {"spend cap reached"}


def test_cancel_stops_the_remaining_cells(db, two_models, django_capture_on_commit_callbacks):
    # Queue nothing (no on_commit execution), run one cell by hand, cancel, then deliver the rest.
    run = make_run(inputs=["a", "b", "c"], candidates=["model:fp-a"])
    first, *rest = CompareCell.objects.filter(run=run).order_by("id")
    assert cell_service.cell_run(cell_id=first.pk).status == "done"
    assert run_cancel(run=run) is True
    for cell in rest:
        assert cell_service.cell_run(cell_id=cell.pk).status == "gone"
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    statuses = sorted(CompareCell.objects.filter(run=run).values_list("status", flat=True))
    assert statuses == ["cancelled", "cancelled", "done"]
    assert CallRecord.objects.count() == 1


def test_a_redelivered_cell_reuses_the_finished_call_instead_of_paying_again(db, two_models, fake_provider):
    run = make_run(inputs=["only"], candidates=["model:fp-a"])
    cell = CompareCell.objects.get(run=run)
    assert cell_service.cell_run(cell_id=cell.pk).status == "done"
    # A worker died after the call was recorded but before the cell was marked: it looks
    # claimed long ago, and its message is delivered again.
    long_ago = timezone.now() - timezone.timedelta(seconds=cell_service.lease_s() + 1)
    CompareCell.objects.filter(pk=cell.pk).update(status=CellStatus.RUNNING, claimed_at=long_ago, output="")
    CompareRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    assert cell_service.cell_run(cell_id=cell.pk).status == "done"
    cell.refresh_from_db()
    assert cell.reused is True and cell.output == "Echo: only"
    assert len(fake_provider.history) == 1
    assert CallRecord.objects.filter(trace_id=cell.trace_id).count() == 1
    assert cell.claims == 2


def test_a_live_claim_is_left_alone_and_retried_later(db, two_models, fake_provider):
    run = make_run(inputs=["only"], candidates=["model:fp-a"])
    cell = CompareCell.objects.get(run=run)
    CompareCell.objects.filter(pk=cell.pk).update(status=CellStatus.RUNNING, claimed_at=timezone.now())
    outcome = cell_service.cell_run(cell_id=cell.pk)
    assert outcome.status == "busy" and outcome.retry_in is not None and outcome.retry_in > 1
    assert fake_provider.history == []


def test_a_delivery_for_a_finished_cell_does_nothing(db, two_models, fake_provider):
    run = make_run(inputs=["only"], candidates=["model:fp-a"])
    cell = CompareCell.objects.get(run=run)
    cell_service.cell_run(cell_id=cell.pk)
    assert cell_service.cell_run(cell_id=cell.pk).status == "gone"
    assert len(fake_provider.history) == 1


def test_transient_errors_are_retried_then_the_cell_is_marked_failed(
    eager_celery, django_capture_on_commit_callbacks, two_models, fake_provider, settings
):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0, "BREAKER_FAILURES": 100}
    settings.COMPARE_CELL_MAX_RETRIES = 2
    fake_provider.script("fp-a", *[Reply.server_error() for _ in range(10)])
    eager_celery.conf.task_eager_propagates = False  # let apply() carry out the retries
    with django_capture_on_commit_callbacks(execute=True):
        run = make_run(inputs=["x"], candidates=["model:fp-a"])
    cell = CompareCell.objects.get(run=run)
    # One try plus two retries, each a single attempt (no engine retries), then failed.
    assert len(fake_provider.requests_for("fp-a")) == 3
    assert cell.status == CellStatus.FAILED
    assert cell.retries == 2
    assert CallRecord.objects.filter(trace_id=cell.trace_id).count() == 3
    run.refresh_from_db()
    assert run.status == RunStatus.DONE


def test_a_permanent_error_fails_the_cell_without_retrying(db, two_models, fake_provider, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0}
    fake_provider.script("fp-a", Reply.unauthorized())
    run = make_run(inputs=["x"], candidates=["model:fp-a"])
    cell = CompareCell.objects.get(run=run)
    assert cell_service.cell_run(cell_id=cell.pk).status == "failed"
    cell.refresh_from_db()
    assert cell.status == CellStatus.FAILED and cell.retries == 0 and cell.error
    assert cell.call_record_id == CallRecord.objects.get(trace_id=cell.trace_id).pk
    assert len(fake_provider.requests_for("fp-a")) == 1


def test_the_task_asks_celery_to_retry_a_busy_cell(db, two_models):
    run = make_run(inputs=["only"], candidates=["model:fp-a"])
    cell = CompareCell.objects.get(run=run)
    CompareCell.objects.filter(pk=cell.pk).update(status=CellStatus.RUNNING, claimed_at=timezone.now())
    from celery.exceptions import Retry

    with pytest.raises(Retry):
        cell_execute.apply(args=[cell.pk], throw=True)


def test_a_provider_at_its_concurrency_limit_makes_cells_wait(db, two_models, settings, fake_provider):
    from compare.slots import slot_acquire, slot_release

    settings.COMPARE_PROVIDER_CONCURRENCY = 1
    run = make_run(inputs=["only"], candidates=["model:fp-a"])
    cell = CompareCell.objects.get(run=run)
    held = slot_acquire(cell.candidate.pool, lease_s=60)
    assert held is not None
    outcome = cell_service.cell_run(cell_id=cell.pk)
    assert outcome.status == "busy"
    assert fake_provider.history == []
    slot_release(held)
    assert cell_service.cell_run(cell_id=cell.pk).status == "done"


def test_assertions_are_checked_and_a_judge_gives_its_reason(db, two_models, fake_provider):
    fake_provider.model("fp-judge")
    fake_provider.script("fp-a", Reply.ok("Paris"))
    fake_provider.script("fp-judge", Reply.ok("PASS\nIt names the capital."))
    rows_expected = ["Paris"]
    run = make_run(
        inputs=["Paris"],
        expected=rows_expected,
        candidates=["model:fp-a"],
        assertions=[
            AssertionSpec("equals"),
            AssertionSpec("regex", value="^Par"),
            AssertionSpec("json"),
            AssertionSpec("judge", value="names the capital", model="fp-judge"),
        ],
    )
    cell = CompareCell.objects.get(run=run)
    cell_service.cell_run(cell_id=cell.pk)
    cell.refresh_from_db()
    assert [c["passed"] for c in cell.checks] == [True, True, False, True]
    assert cell.checks[3]["detail"] == "It names the capital."
    assert cell.passed is False
    judge_call = fake_provider.requests_for("fp-judge")[0]
    assert "names the capital" in str(judge_call.body)
    # The judge's call is recorded and counted in the cell's cost.
    judge_record = CallRecord.objects.get(role="judge")
    assert cell.cost_usd == CallRecord.objects.get(trace_id=cell.trace_id).cost_usd + (
        judge_record.cost_usd or 0
    )


def test_an_assertion_on_the_expected_value_is_not_applicable_to_a_row_without_one(
    db, two_models, fake_provider
):
    fake_provider.script("fp-a", Reply.ok("Paris"), Reply.ok("Lyon"))
    run = make_run(
        inputs=["Capital of France?", "Any city?"],
        expected=["Paris", ""],
        candidates=["model:fp-a"],
        assertions=[AssertionSpec("equals"), AssertionSpec("contains")],
    )
    for cell in CompareCell.objects.filter(run=run):
        cell_service.cell_run(cell_id=cell.pk)
    with_expected, without = CompareCell.objects.filter(run=run).order_by("prompt__position")
    assert [c["passed"] for c in with_expected.checks] == [True, True] and with_expected.passed is True
    assert [c["passed"] for c in without.checks] == [None, None] and without.passed is None
    assert (with_expected.verdict, without.verdict) == ("pass", "not_applicable")


def test_unknown_or_unusable_candidates_are_refused_before_anything_is_stored(db, fake_provider):
    rows = [PromptRow(input="x")]
    with pytest.raises(CompareInputError, match="Unknown model 'nope'"):
        candidates_parse(values=["model:nope"], rows=rows)
    with pytest.raises(CompareInputError, match="Pick at least one"):
        candidates_parse(values=[], rows=rows)
    simulated_model("off").__class__.objects.filter(name="off").update(enabled=False)
    with pytest.raises(CompareInputError, match="disabled"):
        candidates_parse(values=["model:off"], rows=rows)
    keyless = fake_provider.model(
        "needs-key", provider=fake_provider.provider(name="p", api_key_env="UNSET_KEY_X")
    )
    with pytest.raises(CompareInputError, match="needs key: set UNSET_KEY_X"):
        candidates_parse(values=[f"model:{keyless.name}"], rows=rows)
    with pytest.raises(CompareInputError, match="'Each prompt's own route' needs a task_type"):
        candidates_parse(values=["route:*"], rows=rows)
    assert CompareRun.objects.count() == 0


def test_a_set_over_the_limit_is_refused(db, two_models, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "COMPARE_MAX_PROMPTS": 2}
    with pytest.raises(CompareInputError, match="limit is 2"):
        make_run(inputs=["a", "b", "c"], candidates=["model:fp-a"])
    assert CompareRun.objects.count() == 0


def test_a_broker_that_is_down_at_launch_stores_nothing(db, two_models):
    from orchestrator_site.celery import app

    saved = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url = "redis://127.0.0.1:9/0"  # the discard port: nothing listens
    app.conf.task_always_eager = False
    try:
        with pytest.raises(QueueUnavailable, match=r"task queue is unreachable .*Nothing was launched"):
            make_run(inputs=["a"], candidates=["model:fp-a"])
    finally:
        app.conf.broker_url, app.conf.task_always_eager = saved
    assert CompareRun.objects.count() == 0
    assert CompareCell.objects.count() == 0


def test_a_claim_lapses_only_after_the_hard_time_limit(settings):
    settings.COMPARE_CELL_TIME_LIMIT_S = 300
    soft, hard, lease = cell_service.time_limits()
    assert soft < hard < lease


def test_the_sweep_requeues_cells_whose_worker_died(request, two_models, fake_provider):
    run = make_run(inputs=["a", "b"], candidates=["model:fp-a"])  # queued, not run
    request.getfixturevalue("eager_celery")  # what the sweep queues runs inline
    stale, fresh = CompareCell.objects.filter(run=run).order_by("id")
    long_ago = timezone.now() - timezone.timedelta(seconds=cell_service.lease_s() + 1)
    CompareCell.objects.filter(pk=stale.pk).update(status=CellStatus.RUNNING, claimed_at=long_ago)
    CompareCell.objects.filter(pk=fresh.pk).update(status=CellStatus.RUNNING, claimed_at=timezone.now())
    assert sweep.cells_sweep() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == CellStatus.DONE and stale.claims == 1
    assert fresh.status == CellStatus.RUNNING
    assert len(fake_provider.history) == 1


def test_a_selecting_route_is_priced_at_the_model_selection_would_pick(db, two_models):
    from tests.factories import TaskRouteFactory

    fp_a, _ = two_models
    fp_a.capabilities.add(Capability.objects.create(slug="math"))
    route = TaskRouteFactory(task_type="sums", optimize_for="cost")
    route.capabilities.set(fp_a.capabilities.all())
    rows = [PromptRow(input="x" * 400)]
    specs = candidates_parse(values=["route:sums"], rows=rows)
    estimate = run_estimate(rows=rows, candidates=specs, assertions=[], max_tokens=100)
    assert specs[0].price_model == fp_a
    assert estimate.per_candidate[0]["cost_usd"] == Decimal("0.00104") + Decimal("0.002")


def test_routes_and_prompt_versions_run_with_their_own_system_prompt(db, two_models, fake_provider):
    from tests.factories import TaskRouteFactory

    fp_a, _ = two_models
    route = TaskRouteFactory(task_type="answer", model=fp_a)
    v1 = PromptVersion.objects.create(route=route, version=1, system_prompt="You are version one.")
    v2 = PromptVersion.objects.create(route=route, version=2, system_prompt="You are version two.")
    route.active_prompt = v2
    route.save()
    run = make_run(inputs=["hello"], candidates=["route:answer", f"prompt:{v1.pk}"])
    for cell in CompareCell.objects.filter(run=run).order_by("candidate__position"):
        assert cell_service.cell_run(cell_id=cell.pk).status == "done"
    systems = [
        [m["content"] for m in r.body["messages"] if m["role"] == "system"]
        for r in fake_provider.requests_for("fp-a")
    ]
    assert systems == [["You are version two."], ["You are version one."]]
    labels = list(run.candidates.order_by("position").values_list("label", flat=True))
    assert labels == ["route answer", "answer v1"]


def test_the_sweep_closes_orphaned_cells_of_a_stopped_run_and_frees_their_reservation(db, two_models):
    run = make_run(inputs=["a", "b"], candidates=["model:fp-a"], spend_cap="1")
    orphan, waiting = CompareCell.objects.filter(run=run).order_by("id")
    long_ago = timezone.now() - timezone.timedelta(seconds=cell_service.lease_s() + 1)
    CompareCell.objects.filter(pk=orphan.pk).update(
        status=CellStatus.RUNNING, claimed_at=long_ago, claims=1, reserved_usd=Decimal("0.01")
    )
    CompareRun.objects.filter(pk=run.pk).update(reserved_usd=Decimal("0.01"))
    run_cancel(run=run)
    assert sweep.cells_sweep() == 0
    orphan.refresh_from_db()
    run.refresh_from_db()
    assert orphan.status == CellStatus.CANCELLED and "worker was lost" in orphan.error
    assert run.reserved_usd == 0 and run.status == RunStatus.CANCELLED


def test_the_sweep_requeues_the_waiting_cells_of_a_stalled_run(request, two_models, fake_provider):
    stalled = make_run(inputs=["a", "b"], candidates=["model:fp-a"])  # queued, messages lost
    busy = make_run(inputs=["c"], candidates=["model:fp-a"])
    long_ago = timezone.now() - timezone.timedelta(seconds=sweep.STALLED_AFTER_S + 1)
    CompareRun.objects.filter(pk__in=[stalled.pk, busy.pk]).update(created_at=long_ago)
    CompareCell.objects.filter(run=busy).update(status=CellStatus.RUNNING, claimed_at=timezone.now())
    request.getfixturevalue("eager_celery")
    assert sweep.cells_sweep() == 2
    stalled.refresh_from_db()
    assert stalled.status == RunStatus.DONE
    assert CompareCell.objects.get(run=busy).status == CellStatus.RUNNING
    assert len(fake_provider.history) == 2


def test_a_cell_that_ran_twice_counts_each_call_once_in_the_runs_spend(
    db, two_models, fake_provider, settings
):
    # The cell's trace already holds a paid failure (a stream cut after some tokens, billed
    # for what it sent), then the cell's first try fails and its retry succeeds: the run's
    # spend is the sum of the trace's records, each counted once.
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0, "BREAKER_FAILURES": 100}
    run = make_run(inputs=["x"], candidates=["model:fp-a"])  # queued on the test's own broker
    cell = CompareCell.objects.get(run=run)
    fake_provider.script(
        "fp-a",
        Reply.stream_cut(after_tokens=3, text="one two three four"),
        Reply.server_error(),
        Reply.ok("fine"),
    )

    async def cut_stream() -> None:
        events = orchestrator.astream(
            [{"role": "user", "content": "x"}], model="fp-a", trace_id=cell.trace_id, source="batch"
        )
        assert [e.kind async for e in events][-1] == "error"
        await orchestrator.arecords_flush()

    async_to_sync(cut_stream)()
    cut_cost = CallRecord.objects.get(trace_id=cell.trace_id).cost_usd
    assert cut_cost is not None and cut_cost > 0

    assert cell_service.cell_run(cell_id=cell.pk).status == "retry"
    assert cell_service.cell_run(cell_id=cell.pk).status == "done"
    run.refresh_from_db()
    cell.refresh_from_db()
    ok_cost = CallRecord.objects.get(trace_id=cell.trace_id, status="ok").cost_usd
    assert CallRecord.objects.filter(trace_id=cell.trace_id).count() == 3
    assert cell.status == CellStatus.DONE and cell.retries == 1
    assert cell.cost_usd == cut_cost + ok_cost
    assert run.spent_usd == cell.cost_usd  # not cut_cost + (cut_cost + ok_cost)
    assert run.reserved_usd == 0


def test_a_superseded_message_does_nothing(db, two_models, fake_provider):
    run = make_run(inputs=["only"], candidates=["model:fp-a"])
    cell = CompareCell.objects.get(run=run)
    CompareCell.objects.filter(pk=cell.pk).update(dispatch=1)  # the sweep queued it again
    outcome = cell_service.cell_run(cell_id=cell.pk, dispatch=0)
    assert outcome.status == "gone" and "superseded" in outcome.detail
    assert fake_provider.history == []
    assert cell_service.cell_run(cell_id=cell.pk, dispatch=1).status == "done"


def test_the_sweep_requeues_a_dead_workers_cell_once(db, two_models):
    run = make_run(inputs=["a"], candidates=["model:fp-a"])
    cell = CompareCell.objects.get(run=run)
    a_second_ago = timezone.now() - timezone.timedelta(seconds=1)
    CompareCell.objects.filter(pk=cell.pk).update(
        status=CellStatus.RUNNING,
        claimed_at=a_second_ago,
        lease_until=a_second_ago,
        claims=1,
        worker="w-dead",
    )
    assert sweep.cells_sweep() == 1
    cell.refresh_from_db()
    assert (cell.status, cell.dispatch, cell.lease_until) == (CellStatus.PENDING, 1, None)
    assert sweep.cells_sweep() == 0  # queued now: not again


def test_the_sweep_leaves_live_claims_queued_cells_and_waiting_cells_alone(db, two_models):
    run = make_run(inputs=["running", "queued", "waiting"], candidates=["model:fp-a"])
    running, queued, waiting = CompareCell.objects.filter(run=run).order_by("prompt__position")
    soon = timezone.now() + timezone.timedelta(seconds=5)
    CompareCell.objects.filter(pk=running.pk).update(
        status=CellStatus.RUNNING, claimed_at=timezone.now(), lease_until=soon, claims=1
    )
    CompareCell.objects.filter(pk=waiting.pk).update(lease_until=soon)  # deferred, due back soon
    assert sweep.cells_sweep() == 0
    assert [c.dispatch for c in CompareCell.objects.filter(run=run)] == [0, 0, 0]


def test_the_sweep_requeues_a_deferred_cell_whose_message_never_came_back(db, two_models):
    run = make_run(inputs=["a"], candidates=["model:fp-a"])
    cell = CompareCell.objects.get(run=run)
    CompareCell.objects.filter(pk=cell.pk).update(lease_until=timezone.now() - timezone.timedelta(seconds=1))
    assert sweep.cells_sweep() == 1
    cell.refresh_from_db()
    assert (cell.status, cell.dispatch, cell.lease_until) == (CellStatus.PENDING, 1, None)


def test_a_cell_waiting_for_a_slot_backs_off_and_says_when_it_is_due_back(db, two_models, settings):
    from compare.slots import slot_acquire, slot_release

    settings.COMPARE_PROVIDER_CONCURRENCY = 1
    run = make_run(inputs=["only"], candidates=["model:fp-a"])
    cell = CompareCell.objects.get(run=run)
    held = slot_acquire(cell.candidate.pool, lease_s=60)
    waits = [cell_service.cell_run(cell_id=cell.pk, deferrals=n).retry_in for n in range(12)]
    slot_release(held)
    for n, wait in enumerate(waits):
        base = min(cell_service.BUSY_BACKOFF_MAX_S, 2.0**n)
        assert wait is not None and 0.5 * base <= wait <= 1.5 * base, (n, wait)
    assert len({round(w, 6) for w in waits if w}) == len(waits)  # jittered: no two alike
    cell.refresh_from_db()
    due = (cell.lease_until - timezone.now()).total_seconds()
    assert waits[-1] < due <= waits[-1] + cell_service.DEFER_GRACE_S + 1


def test_assertions_over_a_prompt_set_separate_a_strong_simulated_model_from_a_cheap_one(db):
    simulated_model("sim-strong", provider="sim-strong", skill=1.0)
    simulated_model("sim-cheap", provider="sim-cheap", skill=0.5)
    questions = [(f"What is {a} * {a + 7}?", str(a * (a + 7))) for a in range(21, 41)]
    run = make_run(
        inputs=[q for q, _ in questions],
        expected=[e for _, e in questions],
        candidates=["model:sim-strong", "model:sim-cheap"],
        assertions=[AssertionSpec("contains")],
    )
    for cell in CompareCell.objects.filter(run=run):
        cell_service.cell_run(cell_id=cell.pk)

    passed = {
        name: CompareCell.objects.filter(run=run, model_name=name, passed=True).count()
        for name in ("sim-strong", "sim-cheap")
    }
    assert passed["sim-strong"] == len(questions)
    assert 0.3 * len(questions) <= passed["sim-cheap"] <= 0.7 * len(questions)
