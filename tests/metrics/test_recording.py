"""The recorder: one CallRecord per attempt, priced, truncated, and never failing a call."""

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db import connection

from metrics import services as recorder
from metrics.models import CallRecord
from routing import orchestrator
from routing.errors import AllAttemptsFailed
from tests.factories import FallbackChainFactory
from tests.fake_provider import Reply, fake_provider_fixture  # noqa: F401
from tests.metrics.conftest import subprocess_env
from tests.routing.engine.conftest import clean_engine  # noqa: F401  (a clean engine per test)

MESSAGES = [{"role": "user", "content": "one two three four"}]


@pytest.fixture
def no_retries(settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 0, "BREAKER_FAILURES": 100}


def test_records_equal_attempts_with_one_trace_id(fake_provider, no_retries, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RETRY_MAX": 1, "RETRY_BASE_S": 0.001}
    a = fake_provider.model("a", kind="openai")
    b = fake_provider.model("b", kind="anthropic")
    FallbackChainFactory(name="main", models=[a, b])
    fake_provider.script("a", Reply.server_error(), Reply.unauthorized())

    result = orchestrator.execute_with_fallback(MESSAGES, chain="main", source="batch", role="cell")

    records = list(CallRecord.objects.order_by("id"))
    assert len(records) == len(result.attempts) == 3
    assert [a.record_id for a in result.attempts] == [r.id for r in records]
    assert {r.trace_id for r in records} == {result.trace_id}
    assert [(r.model_name, r.attempt, r.status, r.chain_step) for r in records] == [
        ("a", 1, "error", 0),
        ("a", 2, "error", 0),
        ("b", 1, "ok", 1),
    ]
    assert [r.http_status for r in records] == [500, 401, None]
    assert {(r.source, r.role, r.chain_name) for r in records} == {("batch", "cell", "main")}
    assert (records[2].provider_name, records[2].provider_kind, records[2].provider_model_id) == (
        "fake-anthropic",
        "anthropic",
        "b",
    )
    assert records[2].model_id == b.id


def test_separate_requests_get_separate_trace_ids_and_a_given_one_is_kept(fake_provider):
    fake_provider.model("a")

    first = orchestrator.complete(MESSAGES, model="a")
    second = orchestrator.complete(MESSAGES, model="a", trace_id="feedfacefeedfacefeedfacefeedface")

    assert first.trace_id != second.trace_id
    assert second.trace_id == "feedfacefeedfacefeedfacefeedface"
    assert set(CallRecord.objects.values_list("trace_id", flat=True)) == {first.trace_id, second.trace_id}


def test_cost_is_computed_from_the_override_and_stored_with_the_unit_prices(fake_provider):
    fake_provider.model("priced", input_cost_per_1k=Decimal("1.5"), output_cost_per_1k=Decimal("2"))
    fake_provider.script("priced", Reply.ok("a b c d e", input_tokens=1000, output_tokens=500))

    result = orchestrator.complete(MESSAGES, model="priced")

    record = CallRecord.objects.get()
    assert (record.input_tokens, record.output_tokens) == (1000, 500)
    assert record.cost_usd == Decimal("2.5")  # 1000 × 1.5/1K + 500 × 2/1K
    assert result.cost_usd == Decimal("2.5")
    assert (record.input_price_per_1k, record.output_price_per_1k, record.price_source) == (
        Decimal("1.5"),
        Decimal("2"),
        "override",
    )


def test_a_catalogue_model_is_priced_from_the_bundled_catalogue(fake_provider):
    fake_provider.model("gpt", model_id="gpt-4o")
    fake_provider.script("gpt-4o", Reply.ok("hi", input_tokens=1000, output_tokens=1000))

    orchestrator.complete(MESSAGES, model="gpt")

    record = CallRecord.objects.get()
    assert record.price_source == "catalogue"
    assert record.cost_usd == (record.input_price_per_1k + record.output_price_per_1k)
    assert record.cost_usd > 0


def test_an_unknown_price_is_flagged_not_zero_and_warned_once(fake_provider, caplog):
    fake_provider.model("mystery", kind="openai_compatible", model_id="homebrew-7b")
    caplog.set_level(logging.WARNING, logger="metrics.services")

    first = orchestrator.complete(MESSAGES, model="mystery")
    orchestrator.complete(MESSAGES, model="mystery")

    assert first.cost_usd is None
    assert list(CallRecord.objects.values_list("cost_usd", "price_source")) == [(None, "unknown")] * 2
    warnings = [r for r in caplog.records if "No price known for model mystery" in r.getMessage()]
    assert len(warnings) == 1


def test_error_messages_and_texts_are_truncated_to_the_limits(fake_provider, no_retries, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "ERROR_MESSAGE_LIMIT": 20, "RECORD_TEXT_LIMIT": 12}
    fake_provider.model("a")
    fake_provider.model("b")
    fake_provider.script("a", Reply.unauthorized())
    fake_provider.script("b", Reply.ok("a long answer that will not fit"))

    with pytest.raises(AllAttemptsFailed):
        orchestrator.complete(MESSAGES, model="a")
    orchestrator.complete(MESSAGES, model="b")

    failed = CallRecord.objects.get(model_name="a")
    assert 0 < len(failed.error_message) <= 20
    ok = CallRecord.objects.get(model_name="b")
    assert len(ok.request_text) <= 12
    assert ok.response_text == "a long answ…"


def test_a_text_limit_of_zero_stores_no_text(fake_provider, settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RECORD_TEXT_LIMIT": 0}
    fake_provider.model("a")

    orchestrator.complete(MESSAGES, model="a")

    assert list(CallRecord.objects.values_list("request_text", "response_text")) == [("", "")]


def test_created_at_backdates_the_records():
    from tests.routing.engine.conftest import simulated_model

    simulated_model("sim")
    when = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    orchestrator.complete(MESSAGES, model="sim", created_at=when, source="simulation")

    record = CallRecord.objects.get()
    assert when <= record.created_at < when + timedelta(seconds=5)
    assert record.simulated
    assert record.source == "simulation"


def test_a_failing_database_never_fails_the_call_and_the_record_waits_for_it(fake_provider, caplog):
    fake_provider.model("a")
    table = CallRecord._meta.db_table
    with connection.cursor() as cursor:  # from here on, every insert of a record is refused
        cursor.execute(f"ALTER TABLE {table} RENAME TO records_away")
    caplog.set_level(logging.WARNING, logger="metrics.services")

    result = orchestrator.complete(MESSAGES, model="a")

    assert "one two three four" in result.text
    assert any("kept for the next flush" in r.getMessage() for r in caplog.records)
    assert recorder.call_records_pending() == 1

    with connection.cursor() as cursor:  # the database is back
        cursor.execute(f"ALTER TABLE records_away RENAME TO {table}")
    assert CallRecord.objects.count() == 0
    orchestrator.records_flush()

    assert CallRecord.objects.get().trace_id == result.trace_id
    assert result.attempts[0].record_id == CallRecord.objects.get().id


@pytest.mark.django_db
def test_a_long_outage_loses_no_record_however_many_flushes_fail(caplog):
    table = CallRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO records_away")
    caplog.set_level(logging.WARNING, logger="metrics.services")
    for attempt in (1, 2, 3):
        recorder.call_record_enqueue(trace_id="outage", model_name="m", status="ok", attempt=attempt)

    for _ in range(20):  # far more failed writes than any retry limit
        assert recorder.call_records_flush() == 0
    assert recorder.call_records_pending() == 3
    assert recorder.call_records_outage()
    assert sum("database unavailable" in r.getMessage() for r in caplog.records) == 1  # not 20

    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE records_away RENAME TO {table}")
    assert recorder.call_records_flush() == 3

    assert sorted(CallRecord.objects.values_list("attempt", flat=True)) == [1, 2, 3]
    assert not recorder.call_records_outage()
    assert any("written again after" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db(transaction=True)
def test_each_record_learns_its_own_id_when_written_in_bulk():
    written: dict[str, int] = {}
    for i in range(120):  # several statements' worth
        recorder.call_record_enqueue(
            trace_id=f"t{i}",
            model_name="m",
            status="ok",
            on_written=lambda pk, t=f"t{i}": written.update({t: pk}),
        )

    assert recorder.call_records_flush() == 120

    assert dict(CallRecord.objects.values_list("trace_id", "id")) == written


REFUSED_ROWS = [
    pytest.param({"http_status": -1}, id="a check constraint"),
    # Over numeric(16, 10) (a price far off, say); SQLite stores any number.
    pytest.param(
        {"cost_usd": Decimal("10") ** 9},
        id="a number too large",
        marks=pytest.mark.skipif(
            django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"),
            reason="SQLite stores any number",
        ),
    ),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("refused", REFUSED_ROWS)
def test_a_record_the_database_refuses_does_not_lose_the_others(refused, caplog):
    recorder.call_record_enqueue(trace_id="fine-1", model_name="m", status="ok")
    recorder.call_record_enqueue(trace_id="refused", model_name="m", status="ok", **refused)
    recorder.call_record_enqueue(trace_id="fine-2", model_name="m", status="ok")
    caplog.set_level(logging.WARNING, logger="metrics.services")

    recorder.call_records_flush()

    assert sorted(CallRecord.objects.values_list("trace_id", flat=True)) == ["fine-1", "fine-2"]
    assert any("call record lost: refused" in r.getMessage() for r in caplog.records)
    assert recorder.call_records_pending() == 0


@pytest.mark.django_db(transaction=True)
def test_text_longer_than_its_column_is_cut_to_fit():
    recorder.call_record_enqueue(trace_id="long", model_name="m", status="ok", task_type="t" * 300)

    recorder.call_records_flush()

    assert CallRecord.objects.get(trace_id="long").task_type == "t" * 100


@pytest.mark.django_db(transaction=True)
def test_a_row_whose_model_was_deleted_is_kept_without_the_link():
    recorder.call_record_enqueue(trace_id="t1", model_name="gone", status="ok", model_id=987654)
    recorder.call_record_enqueue(trace_id="t1", model_name="fine", status="ok")

    recorder.call_records_flush()

    assert sorted(CallRecord.objects.values_list("model_name", "model_id")) == [
        ("fine", None),
        ("gone", None),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_background_writer_writes_buffered_records(settings):
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RECORD_FLUSH_INTERVAL_S": 0.05}
    written_before = recorder.call_records_written()

    recorder.call_record_enqueue(trace_id="bg", model_name="m", status="ok")

    assert recorder.call_records_wait(written_before + 1, timeout=10)
    assert CallRecord.objects.filter(trace_id="bg").exists()


def test_arecords_flush_writes_what_the_async_api_queued(fake_provider, settings):
    from asgiref.sync import async_to_sync

    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RECORD_FLUSH_INTERVAL_S": 3600}
    fake_provider.model("a")

    async def call_then_flush():
        result = await orchestrator.acomplete(MESSAGES, model="a")
        before = recorder.call_records_pending()
        await orchestrator.arecords_flush()
        return result, before

    result, pending_before = async_to_sync(call_then_flush)()

    assert pending_before == 1
    record = CallRecord.objects.get()
    assert record.trace_id == result.trace_id
    assert result.attempts[0].record_id == record.id


@pytest.mark.django_db(transaction=True)
def test_records_still_queued_at_a_normal_exit_are_written(tmp_path):
    import subprocess
    import sys

    script = (
        "import django\n"
        "django.setup()\n"
        "from django.conf import settings\n"
        "settings.ORCHESTRATOR['RECORD_FLUSH_INTERVAL_S'] = 3600  # the writer would wait an hour\n"
        "from metrics.services import call_record_enqueue\n"
        "for attempt in (1, 2, 3):\n"
        "    call_record_enqueue(trace_id='atexit', model_name='m', status='ok', attempt=attempt)\n"
    )
    env = subprocess_env(tmp_path)
    subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=django_settings.BASE_DIR, check=True, timeout=60
    )

    assert sorted(CallRecord.objects.filter(trace_id="atexit").values_list("attempt", flat=True)) == [1, 2, 3]
    assert not list(tmp_path.glob("record-spool/*/*.seg"))  # spooled until written, then deleted
