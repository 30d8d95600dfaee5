"""Streaming: failover before the first token, error after it, client disconnects."""

import asyncio

import pytest
from asgiref.sync import async_to_sync

from metrics.models import CallRecord
from routing import orchestrator
from routing.errors import UnknownModel
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply

MESSAGES = [{"role": "user", "content": "tell me a story"}]
LONG = " ".join(f"word{i}" for i in range(40))


@pytest.fixture
def chain(fake_provider, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0}
    first = fake_provider.model("first", kind="openai")
    second = fake_provider.model("second", kind="anthropic")
    return FallbackChainFactory(name="main", models=[first, second])


def collect(**kwargs):
    async def run():
        return [event async for event in orchestrator.astream(MESSAGES, **kwargs)]

    return async_to_sync(run)()


def text_of(events):
    return "".join(e.text for e in events if e.kind == "delta")


def test_a_failure_before_the_first_token_falls_back_transparently(fake_provider, chain):
    fake_provider.script("first", Reply.server_error())
    fake_provider.script("second", Reply.ok("all good here"))

    events = collect(chain="main")

    assert [e.kind for e in events if e.kind != "delta"] == ["attempt", "attempt_failed", "attempt", "done"]
    assert text_of(events) == "all good here"
    done = events[-1].result
    assert done.model == "second"
    assert [(a.model, a.status) for a in done.attempts] == [("first", "error"), ("second", "ok")]
    orchestrator.records_flush()
    assert list(CallRecord.objects.order_by("id").values_list("model_name", "status", "stream")) == [
        ("first", "error", True),
        ("second", "ok", True),
    ]


def test_a_failure_after_the_first_token_ends_with_an_error_and_records_the_partial_call(
    fake_provider, chain
):
    fake_provider.script("first", Reply.stream_cut(after_tokens=3, text=LONG))

    events = collect(chain="main")

    assert events[-1].kind == "error"
    assert "mid-stream" in events[-1].error
    assert text_of(events) == "word0 word1 word2"
    assert len(fake_provider.requests_for("second")) == 0
    orchestrator.records_flush()
    record = CallRecord.objects.get()
    assert (record.status, record.error_class, record.output_tokens) == ("error", "transient", 3)
    assert record.response_text == "word0 word1 word2"


def test_closing_the_stream_cancels_upstream_and_records_a_cancelled_call(fake_provider, chain):
    fake_provider.script("first", Reply.slow(token_interval_s=0.2, text=LONG))

    async def read_two_then_leave():
        stream = orchestrator.astream(MESSAGES, model="first")
        seen = []
        async for event in stream:
            seen.append(event)
            if sum(e.kind == "delta" for e in seen) == 2:
                break
        await stream.aclose()
        return seen

    seen = async_to_sync(read_two_then_leave)()
    orchestrator.records_flush()

    assert text_of(seen) == "word0 word1"
    record = CallRecord.objects.get()
    assert (record.status, record.output_tokens, record.stream) == ("cancelled", 2, True)
    assert record.response_text == "word0 word1"
    assert fake_provider.wait_for(lambda history: history[0].disconnected)


def test_cancelling_the_consuming_task_cancels_upstream(fake_provider, chain):
    fake_provider.script("first", Reply.slow(token_interval_s=0.2, text=LONG))

    async def consume_in_a_task():
        first_delta = asyncio.Event()

        async def consume():
            async for event in orchestrator.astream(MESSAGES, model="first"):
                if event.kind == "delta":
                    first_delta.set()

        task = asyncio.ensure_future(consume())
        await first_delta.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async_to_sync(consume_in_a_task)()
    orchestrator.records_flush()

    assert CallRecord.objects.get().status == "cancelled"
    assert fake_provider.wait_for(lambda history: history[0].disconnected)


@pytest.fixture
def keep_test_connection():
    """As Django's test client does: the handler must not close the test's DB connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_an_asgi_client_disconnect_cancels_upstream_and_leaves_a_cancelled_record(
    fake_provider, settings, keep_test_connection
):
    from django.core.handlers.asgi import ASGIHandler

    settings.ROOT_URLCONF = "tests.routing.engine.streaming_urls"
    fake_provider.model("talker")
    fake_provider.script("talker", Reply.slow(token_interval_s=0.2, text=LONG))

    async def serve_until_the_client_leaves():
        got_body = asyncio.Event()
        requested = False

        async def receive():
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await got_body.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.body" and message.get("body"):
                got_body.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/stream/",
            "raw_path": b"/stream/",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }
        await asyncio.wait_for(ASGIHandler()(scope, receive, send), 20)

    async_to_sync(serve_until_the_client_leaves)()
    assert fake_provider.wait_for(lambda history: history[0].disconnected)
    orchestrator.records_flush()

    record = CallRecord.objects.get()
    assert record.status == "cancelled"
    assert 1 <= record.output_tokens < 40


def test_bad_input_raises_before_any_event(fake_provider, chain):
    with pytest.raises(UnknownModel):
        collect(model="nope")

    assert fake_provider.history == []


def test_a_route_streams_with_its_postprocessor_applied_to_the_final_text(fake_provider, chain):
    from tests.factories import TaskRouteFactory

    TaskRouteFactory(
        task_type="sql", model=chain.steps.get(position=0).model, postprocessor="strip_code_fences"
    )
    fake_provider.script("first", Reply.ok("```sql\nSELECT 1 ORDER BY total\n```"))

    async def run():
        return [e async for e in orchestrator.astream(task_type="sql", content="q")]

    events = async_to_sync(run)()

    assert events[-1].result.text == "SELECT 1 ORDER BY total"


def test_a_transient_failure_before_the_first_token_is_retried_on_the_same_model(
    fake_provider, chain, settings
):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 1, "RETRY_BASE_S": 0.001}
    fake_provider.script("first", Reply.rate_limit(retry_after_ms=5), Reply.ok("second time lucky"))

    events = collect(chain="main")

    assert [(e.kind, e.model) for e in events if e.kind != "delta"] == [
        ("attempt", "first"),
        ("attempt_failed", "first"),
        ("attempt", "first"),
        ("done", "first"),
    ]
    assert events[1].attempt.wait_s == pytest.approx(0.005)
    assert [(a.attempt, a.status) for a in events[-1].result.attempts] == [(1, "error"), (2, "ok")]


def test_when_every_model_fails_before_a_token_the_stream_ends_with_an_error(fake_provider, chain):
    fake_provider.script("first", Reply.unauthorized())
    fake_provider.script("second", Reply.server_error())

    events = collect(chain="main")

    assert events[-1].kind == "error"
    assert events[-1].http_status == 502
    assert events[-1].trace_id
    orchestrator.records_flush()
    assert CallRecord.objects.filter(trace_id=events[-1].trace_id).count() == 2


def test_a_consumer_that_stops_at_done_still_finds_the_record_written(fake_provider, chain):
    async def read_until_done():
        stream = orchestrator.astream(MESSAGES, model="first")
        async for event in stream:
            if event.kind == "done":
                await stream.aclose()
                return event.result

    result = async_to_sync(read_until_done)()

    assert CallRecord.objects.get().trace_id == result.trace_id


def test_the_sync_api_works_from_a_sync_view_under_asgi(fake_provider, settings, keep_test_connection):
    from django.core.handlers.asgi import ASGIHandler

    settings.ROOT_URLCONF = "tests.routing.engine.streaming_urls"
    fake_provider.model("talker")
    sent = []

    async def serve():
        requested = False
        never = asyncio.Event()

        async def receive():
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await never.wait()  # the client stays connected

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/sync/",
            "raw_path": b"/sync/",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
        }
        await asyncio.wait_for(ASGIHandler()(scope, receive, send), 20)

    async_to_sync(serve)()

    assert sent[0]["status"] == 200
    assert b"from a sync view" in b"".join(m.get("body", b"") for m in sent[1:])
    assert CallRecord.objects.get().model_name == "talker"
