"""The column and consensus streams, through the real engine and simulated models."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import AsyncClient, Client
from django.urls import reverse

from metrics.models import CallRecord
from playground import services
from playground.models import PlaygroundColumn, PlaygroundRun, RunMode
from routing import orchestrator
from tests.factories import FallbackChainFactory, UserFactory
from tests.playground.conftest import FAILING, sim_model

pytestmark = pytest.mark.django_db

SLOW_ENOUGH = {"latency_ms_mean": 200, "latency_ms_jitter": 0, "ttft_ms": 10, "tokens_per_second": 400}
SLOW = {"latency_ms_mean": 2000, "latency_ms_jitter": 0, "ttft_ms": 0, "tokens_per_second": 20}


def parse_sse(chunks: list[bytes]) -> list[tuple[str, Any]]:
    events = []
    for block in b"".join(chunks).decode().split("\n\n"):
        name, data = "", None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if name:
            events.append((name, data))
    return events


def run_async(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine function from a sync test, even when this thread already runs an event
    loop (Playwright's sync API does, once a browser test has run in this process)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return async_to_sync(fn)()
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, fn()).result()  # type: ignore[arg-type]


def read_stream(user, url: str) -> list[tuple[str, Any]]:
    async def go():
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "text/event-stream"
        return [chunk async for chunk in response.streaming_content]

    return parse_sse(run_async(go))


def _run(user, mode=RunMode.MODELS, **kwargs):
    return services.run_create(user=user, mode=mode, prompt=kwargs.pop("prompt", "Explain caching"), **kwargs)


def _stream_url(run, position=0):
    return reverse("playground:column_stream", args=[run.pk, position])


def test_a_column_streams_deltas_then_done_with_cost_and_saves_the_answer():
    user = UserFactory()
    sim_model("sim-alpha")
    run = _run(user, models=["sim-alpha"])
    events = read_stream(user, _stream_url(run))
    kinds = [k for k, _ in events]
    assert kinds[0] == "status" and kinds[-1] == "end" and "done" in kinds
    deltas = "".join(d["text"] for k, d in events if k == "delta")
    done = next(d for k, d in events if k == "done")
    assert deltas == done["text"] and done["model"] == "sim-alpha"
    assert done["output_tokens"] > 0 and done["cost_usd"] is not None and done["latency_ms"] is not None
    column = run.columns.get()
    assert (column.status, column.text, column.answered_by) == ("ok", deltas, "sim-alpha")
    assert column.cost_usd is not None and column.output_tokens == done["output_tokens"]
    record = CallRecord.objects.get(trace_id=column.trace_id)
    assert (record.source, record.status, record.stream) == ("playground", "ok", True)


def test_a_failing_model_shows_its_error_in_its_column():
    user = UserFactory()
    sim_model("sim-broken", options=FAILING)
    run = _run(user, models=["sim-broken"])
    events = read_stream(user, _stream_url(run))
    error = next(d for k, d in events if k == "error")
    assert "500" in error["error"] or "server error" in error["error"]
    column = run.columns.get()
    assert column.status == "error" and column.error
    assert CallRecord.objects.filter(trace_id=column.trace_id, status="error").exists()


def test_a_chain_shows_the_path_it_took():
    user = UserFactory()
    FallbackChainFactory(name="main", models=[sim_model("first", options=FAILING), sim_model("second")])
    run = _run(user, mode=RunMode.CHAIN, chain="main")
    events = read_stream(user, _stream_url(run))
    failed = [d for k, d in events if k == "attempt_failed"]
    assert failed and failed[0]["model"] == "first"
    done = next(d for k, d in events if k == "done")
    assert done["model"] == "second"
    column = run.columns.get()
    assert column.answered_by == "second"
    assert [a["model"] for a in column.attempts][-1] == "second"
    assert any(a["model"] == "first" and a["status"] == "error" for a in column.attempts)


def test_a_second_opening_gets_the_saved_answer_without_calling_again():
    user = UserFactory()
    sim_model("sim-alpha")
    run = _run(user, models=["sim-alpha"])
    read_stream(user, _stream_url(run))
    calls = CallRecord.objects.count()
    events = read_stream(user, _stream_url(run))
    snapshot = next(d for k, d in events if k == "snapshot")
    assert snapshot["status"] == "ok" and snapshot["text"] == run.columns.get().text
    assert CallRecord.objects.count() == calls


def test_a_teammate_opening_the_stream_never_starts_the_call():
    owner, teammate = UserFactory(), UserFactory()
    sim_model("sim-alpha")
    run = _run(owner, models=["sim-alpha"])
    events = read_stream(teammate, _stream_url(run))
    assert [k for k, _ in events] == ["snapshot", "end"]
    assert run.columns.get().status == "pending" and not CallRecord.objects.exists()


def test_the_arena_stream_never_names_the_model():
    user = UserFactory()
    sim_model("sim-alpha")
    sim_model("sim-beta")
    run = _run(user, mode=RunMode.ARENA, models=["sim-alpha", "sim-beta"])
    events = read_stream(user, _stream_url(run, 1))
    raw = json.dumps(events)
    assert "sim-beta" not in raw and "sim-alpha" not in raw
    assert next(d for k, d in events if k == "done")["cost_usd"] is None
    assert run.columns.get(position=1).answered_by == "sim-beta"


def test_the_arena_stream_sends_no_timing_tokens_or_path_before_the_vote():
    user = UserFactory()
    sim_model("sim-alpha")
    sim_model("sim-beta")
    run = _run(user, mode=RunMode.ARENA, models=["sim-alpha", "sim-beta"])
    events = read_stream(user, _stream_url(run, 0))
    done = next(d for k, d in events if k == "done")
    assert [done[k] for k in ("ttft_ms", "latency_ms", "input_tokens", "output_tokens", "cost_usd")] == [
        None
    ] * 5
    assert done["attempts"] == [] and done["simulated"] is False
    assert all(d == {} for k, d in events if k == "attempt")
    saved = run.columns.get(position=0)
    assert saved.latency_ms is not None and saved.output_tokens  # kept for after the vote
    snapshot = next(d for k, d in read_stream(user, _stream_url(run, 0)) if k == "snapshot")
    assert snapshot["latency_ms"] is None and snapshot["text"] == saved.text


def test_a_route_run_streams_through_the_route():
    from tests.factories import TaskRouteFactory

    user = UserFactory()
    model = sim_model("sim-route")
    TaskRouteFactory(task_type="summarise", model=model)
    run = _run(user, mode=RunMode.ROUTE, route=__import__("routing.models").models.TaskRoute.objects.get())
    events = read_stream(user, _stream_url(run))
    assert next(d for k, d in events if k == "done")["model"] == "sim-route"
    assert CallRecord.objects.get(trace_id=run.columns.get().trace_id).task_type == "summarise"


def test_a_route_run_shows_its_main_model_skipped_for_a_missing_key_then_the_model_that_answered():
    from tests.factories import TaskRouteFactory
    from tests.playground.conftest import keyless_model

    user = UserFactory()
    chain = FallbackChainFactory(name="spare", models=[sim_model("spare-1")])
    route = TaskRouteFactory(task_type="triage", model=keyless_model("gpt-keyless"), fallback_chain=chain)
    run = _run(user, mode=RunMode.ROUTE, route=route)
    events = read_stream(user, _stream_url(run))
    reason = "provider openai-gpt-keyless needs its key: set PLAYGROUND_TEST_UNSET_KEY"
    first = next(d for k, d in events if k == "attempt")
    assert first["model"] == "spare-1"
    assert first["skipped"] == [
        {"model": "gpt-keyless", "category": "key", "reason": reason, "chain_step": None, "status": "skipped"}
    ]
    column = run.columns.get()
    assert [(a["model"], a["status"]) for a in column.attempts] == [
        ("gpt-keyless", "skipped"),
        ("spare-1", "ok"),
    ]
    assert next(d for k, d in events if k == "done")["attempts"] == column.attempts
    page = Client()
    page.force_login(user)
    path = page.get(reverse("playground:run", args=[run.pk])).content.decode().split('data-field="path"')[1]
    assert f"gpt-keyless skipped: {reason}</li>" in path.split("</ol>")[0]


def test_an_engine_error_before_the_stream_shows_in_the_column():
    user = UserFactory()
    sim_model("sim-alpha")
    run = _run(user, models=["sim-alpha"])
    PlaygroundColumn.objects.filter(run=run).update(target_model="deleted-model")
    events = read_stream(user, _stream_url(run))
    error = next(d for k, d in events if k == "error")
    assert "deleted-model" in error["error"]
    assert run.columns.get().status == "error"


@pytest.mark.django_db(transaction=True)
def test_a_disconnect_cancels_the_call_and_records_it_as_cancelled():
    user = UserFactory()
    sim_model("sim-slow", options=SLOW)
    run = _run(user, models=["sim-slow"], prompt="Tell me a long story about a slow llama please")

    async def go():
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.get(_stream_url(run))
        first_delta = asyncio.Event()

        async def consume():
            async for chunk in response.streaming_content:
                if b"event: delta" in chunk:
                    first_delta.set()

        task = asyncio.ensure_future(consume())
        await first_delta.wait()
        task.cancel()  # what Django's ASGI handler does when the browser goes away
        with pytest.raises(asyncio.CancelledError):
            await task
        await orchestrator.arecords_flush()

    run_async(go)
    column = run.columns.get()
    assert column.status == "cancelled"
    assert column.text  # the part that had arrived is kept
    record = CallRecord.objects.get(trace_id=column.trace_id)
    assert record.status == "cancelled"


def _stream_until_text_then_disconnect(user, url, *, streams=1, before_disconnect=None):
    """Open a stream, wait for text (from each of `streams` consensus members), then go away
    as a closed browser tab does."""

    async def go():
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.get(url)
        texts: set[Any] = set()
        enough = asyncio.Event()

        async def consume():
            async for chunk in response.streaming_content:
                for kind, data in parse_sse([chunk]):
                    if kind in ("delta", "member_delta"):
                        texts.add(data.get("position"))
                if len(texts) >= streams:
                    enough.set()

        task = asyncio.ensure_future(consume())
        await enough.wait()
        if before_disconnect is not None:
            await before_disconnect()
        task.cancel()  # what Django's ASGI handler does when the browser goes away
        with pytest.raises(asyncio.CancelledError):
            await task

    run_async(go)


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_column_shows_the_cost_of_what_it_billed():
    user = UserFactory()
    sim_model("sim-slow", options=SLOW)
    run = _run(user, models=["sim-slow"], prompt="Tell me a long story about a slow llama please")
    _stream_until_text_then_disconnect(user, _stream_url(run))
    column = run.columns.get()
    record = CallRecord.objects.get(trace_id=column.trace_id)
    assert column.status == record.status == "cancelled"
    assert record.cost_usd and column.cost_usd == record.cost_usd
    assert (column.input_tokens, column.output_tokens) == (record.input_tokens, record.output_tokens)
    page = Client()
    page.force_login(user)
    cost = page.get(reverse("playground:run", args=[run.pk])).content.decode().split('data-field="cost">')[1]
    assert cost.startswith("$") and "partial: cancelled" in cost.split("</dd>")[0]


@pytest.mark.django_db(transaction=True)
def test_a_column_stopped_by_the_user_still_gets_what_it_billed():
    user = UserFactory()
    sim_model("sim-slow", options=SLOW)
    run = _run(user, models=["sim-slow"], prompt="Tell me a long story about a slow llama please")

    async def stop():  # Stop's POST lands before the closed connection is noticed
        await sync_to_async(services.run_stop)(run=run)

    _stream_until_text_then_disconnect(user, _stream_url(run), before_disconnect=stop)
    column = run.columns.get()
    record = CallRecord.objects.get(trace_id=column.trace_id)
    assert column.status == "cancelled" and column.error == "Stopped by the user."
    assert record.cost_usd and column.cost_usd == record.cost_usd


@pytest.mark.django_db(transaction=True)
def test_the_consensus_total_includes_what_cancelled_members_billed():
    user = UserFactory()
    sim_model("quick")
    sim_model("sluggish", options=SLOW)
    run = _run(user, mode=RunMode.CONSENSUS, models=["sluggish", "quick"], aggregator="fastest")
    events = read_stream(user, reverse("playground:consensus_stream", args=[run.pk]))
    records = {r.model_name: r for r in CallRecord.objects.filter(trace_id=run.trace_id)}
    assert records["sluggish"].status == "cancelled" and records["sluggish"].cost_usd
    sluggish = next(d for k, d in events if k == "member" and d["position"] == 0)
    assert sluggish["status"] == "cancelled"
    assert Decimal(sluggish["cost_usd"]) == records["sluggish"].cost_usd
    assert run.columns.get(target_model="sluggish").cost_usd == records["sluggish"].cost_usd
    total = records["sluggish"].cost_usd + records["quick"].cost_usd
    assert Decimal(next(d for k, d in events if k == "consensus")["cost_usd"]) == total
    assert Decimal(PlaygroundRun.objects.get(pk=run.pk).consensus["cost_usd"]) == total


@pytest.mark.django_db(transaction=True)
def test_a_stopped_consensus_keeps_what_every_member_billed():
    user = UserFactory()
    sim_model("s1", options=SLOW)
    sim_model("s2", options=SLOW)
    run = _run(user, mode=RunMode.CONSENSUS, models=["s1", "s2"], aggregator="majority")
    _stream_until_text_then_disconnect(user, reverse("playground:consensus_stream", args=[run.pk]), streams=2)
    records = {r.model_name: r for r in CallRecord.objects.filter(trace_id=run.trace_id)}
    assert {r.status for r in records.values()} == {"cancelled"}
    for column in run.columns.all():
        assert column.status == "cancelled"
        assert column.cost_usd == records[column.target_model].cost_usd
    run.refresh_from_db()
    assert Decimal(run.consensus["cost_usd"]) == sum(r.cost_usd for r in records.values())


def test_a_consensus_stream_gives_members_and_the_aggregate():
    user = UserFactory()
    for name in ("c1", "c2", "c3"):
        sim_model(name)
    run = _run(user, mode=RunMode.CONSENSUS, models=["c1", "c2", "c3"], aggregator="majority")
    events = read_stream(user, reverse("playground:consensus_stream", args=[run.pk]))
    members = [d for k, d in events if k == "member"]
    assert sorted(m["model"] for m in members) == ["c1", "c2", "c3"]
    consensus = next(d for k, d in events if k == "consensus")
    assert consensus["status"] == "ok" and consensus["text"] and consensus["explanation"]
    assert sum(consensus["votes"].values()) == 3
    assert sorted(m for g in consensus["groups"] for m in g["models"]) == ["c1", "c2", "c3"]
    run = PlaygroundRun.objects.get(pk=run.pk)
    assert run.consensus_status == "ok" and run.consensus["text"] == consensus["text"]
    assert set(run.columns.values_list("status", flat=True)) == {"ok"}
    assert CallRecord.objects.filter(trace_id=run.trace_id).count() == 3


def test_consensus_members_stream_their_text_live():
    user = UserFactory()
    sim_model("c1", options=SLOW_ENOUGH)
    sim_model("c2", options=SLOW_ENOUGH)
    run = _run(user, mode=RunMode.CONSENSUS, models=["c1", "c2"], aggregator="similarity")
    events = read_stream(user, reverse("playground:consensus_stream", args=[run.pk]))
    kinds = [k for k, _ in events]
    for position in (0, 1):
        deltas = [i for i, (k, d) in enumerate(events) if k == "member_delta" and d["position"] == position]
        end = next(i for i, (k, d) in enumerate(events) if k == "member" and d["position"] == position)
        assert len(deltas) > 3 and max(deltas) < end
        streamed = "".join(events[i][1]["text"] for i in deltas)
        assert streamed == events[end][1]["text"]
    assert kinds.index("consensus") > max(i for i, k in enumerate(kinds) if k == "member")
    assert "closest to the others" in next(d for k, d in events if k == "consensus")["explanation"]


@pytest.mark.django_db(transaction=True)
def test_fastest_takes_the_first_answer_and_cancels_the_others():
    user = UserFactory()
    sim_model("quick")
    sim_model("sluggish", options=SLOW)
    run = _run(user, mode=RunMode.CONSENSUS, models=["sluggish", "quick"], aggregator="fastest")
    events = read_stream(user, reverse("playground:consensus_stream", args=[run.pk]))
    consensus = next(d for k, d in events if k == "consensus")
    assert consensus["model"] == "quick" and "answered first" in consensus["explanation"]
    assert run.columns.get(target_model="sluggish").status == "cancelled"
    run_async(orchestrator.arecords_flush)
    assert CallRecord.objects.get(trace_id=run.trace_id, model_name="sluggish").status == "cancelled"


def test_a_failing_member_shows_its_error_and_the_others_decide():
    user = UserFactory()
    sim_model("c1")
    sim_model("c2")
    sim_model("down", options=FAILING)
    run = _run(user, mode=RunMode.CONSENSUS, models=["c1", "down", "c2"], aggregator="majority")
    events = read_stream(user, reverse("playground:consensus_stream", args=[run.pk]))
    down = next(d for k, d in events if k == "member" and d["position"] == 1)
    assert down["status"] == "error" and down["error"]
    consensus = next(d for k, d in events if k == "consensus")
    assert consensus["status"] == "ok" and "1 member(s) failed" in consensus["explanation"]
    assert run.columns.get(target_model="down").status == "error"


def test_a_judge_consensus_shows_the_judges_reasoning():
    user = UserFactory()
    for name in ("c1", "c2", "judge"):
        sim_model(name)
    run = _run(user, mode=RunMode.CONSENSUS, models=["c1", "c2"], aggregator="judge", judge_model="judge")
    events = read_stream(user, reverse("playground:consensus_stream", args=[run.pk]))
    consensus = next(d for k, d in events if k == "consensus")
    assert consensus["judge"]["model"] == "judge" and consensus["judge"]["text"]


def test_the_stream_endpoints_refuse_post_anonymous_and_unknown_runs(client, member_client):
    sim_model("sim-alpha")
    run = _run(UserFactory(), models=["sim-alpha"])
    assert member_client.post(_stream_url(run)).status_code == 405
    assert client.get(_stream_url(run)).status_code == 302
    assert member_client.get(_stream_url(run, 7)).status_code == 404
    assert member_client.get(reverse("playground:consensus_stream", args=[run.pk])).status_code == 404


def test_a_stream_for_a_run_id_beyond_the_database_integer_range_is_not_found(member_client):
    huge = 10**23
    assert member_client.get(reverse("playground:column_stream", args=[huge, 0])).status_code == 404
    assert member_client.get(reverse("playground:consensus_stream", args=[huge])).status_code == 404


def test_streams_of_several_columns_run_concurrently():
    user = UserFactory()
    options = {"latency_ms_mean": 300, "latency_ms_jitter": 0, "ttft_ms": 300, "tokens_per_second": 100000}
    sim_model("p1", options=options)
    sim_model("p2", options=options)
    sim_model("p3", options=options)
    run = _run(user, models=["p1", "p2", "p3"])

    async def one(position):
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.get(_stream_url(run, position))
        return [c async for c in response.streaming_content]

    async def all_three():
        return await asyncio.gather(*(one(i) for i in range(3)))

    results = run_async(all_three)
    assert all(b"event: done" in b"".join(chunks) for chunks in results)
    assert set(run.columns.values_list("status", flat=True)) == {"ok"}


@pytest.mark.django_db(transaction=True)
def test_a_disconnect_during_a_consensus_cancels_every_member():
    user = UserFactory()
    sim_model("s1", options=SLOW)
    sim_model("s2", options=SLOW)
    run = _run(user, mode=RunMode.CONSENSUS, models=["s1", "s2"], aggregator="majority")

    async def go():
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.get(reverse("playground:consensus_stream", args=[run.pk]))
        seen = asyncio.Event()

        async def consume():
            async for chunk in response.streaming_content:
                if b"event: member_delta" in chunk:
                    seen.set()

        task = asyncio.ensure_future(consume())
        await seen.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await orchestrator.arecords_flush()

    run_async(go)
    run.refresh_from_db()
    assert run.consensus_status == "cancelled"
    assert set(run.columns.values_list("status", flat=True)) == {"cancelled"}
    assert set(CallRecord.objects.filter(trace_id=run.trace_id).values_list("status", flat=True)) == {
        "cancelled"
    }


def test_an_arena_error_does_not_name_the_model():
    user = UserFactory()
    sim_model("sim-alpha")
    sim_model("sim-secret", options={**FAILING, "failure_kinds": ["model_permanent"]})
    run = _run(user, mode=RunMode.ARENA, models=["sim-alpha", "sim-secret"])
    events = read_stream(user, _stream_url(run, 1))
    assert any(k == "error" for k, _ in events)
    assert "sim-secret" not in json.dumps(events)
    assert "sim-secret" not in json.dumps(read_stream(user, _stream_url(run, 1)))  # the snapshot too
