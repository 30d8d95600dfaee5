"""Text the database cannot store (NUL, lone surrogates) never loses a call record."""

from decimal import Decimal

import openai
import pytest
from django.db import connection

from gateway.services import api_key_create
from metrics import services as recorder
from metrics.models import CallRecord
from metrics.services.storable import text_storable
from routing import orchestrator
from routing.orchestrator import records_flush
from tests.fake_provider import Reply, fake_provider_fixture  # noqa: F401
from tests.routing.engine.conftest import clean_engine  # noqa: F401  (a clean engine per test)


@pytest.mark.parametrize(
    ("text", "stored", "replaced"),
    [
        ("plain", "plain", False),
        ("a\x00b", "a\ufffdb", True),
        ("x\ud800y\udfffz", "x\ufffdy\ufffdz", True),
        ("café \x00", "café \ufffd", True),
        ("café", "café", False),
    ],
)
def test_text_storable_replaces_only_what_a_database_refuses(text, stored, replaced):
    assert text_storable(text) == (stored, replaced)


@pytest.mark.django_db
def test_a_record_with_a_nul_in_every_text_field_is_written_and_says_so():
    recorder.call_record_enqueue(
        trace_id="t-nul",
        model_name="m\x00",
        status="error",
        error_message="bad \x00 byte",
        request_text="user: a\x00b",
        response_text="half \ud800",
    )
    recorder.call_records_flush()

    (record,) = CallRecord.objects.all()
    assert (record.model_name, record.error_message, record.request_text, record.response_text) == (
        "m\ufffd",
        "bad \ufffd byte",
        "user: a\ufffdb",
        "half \ufffd",
    )
    assert record.text_replaced


@pytest.mark.django_db
def test_a_record_with_storable_text_is_not_flagged(fake_provider):
    fake_provider.model("m1")

    orchestrator.complete([{"role": "user", "content": "clean"}], model="m1")

    assert CallRecord.objects.get().text_replaced is False


@pytest.mark.django_db
def test_a_nul_in_a_prompt_and_its_answer_keeps_the_record(fake_provider):
    fake_provider.model("m1")
    fake_provider.script("m1", Reply.ok("the answer \x00 with a NUL"))

    result = orchestrator.complete([{"role": "user", "content": "a\x00b"}], model="m1")

    assert result.text == "the answer \x00 with a NUL"  # the caller gets the answer as it came
    record = CallRecord.objects.get(trace_id=result.trace_id)
    assert record.request_text == "user: a\ufffdb"
    assert record.response_text == "the answer \ufffd with a NUL"
    assert record.text_replaced


@pytest.mark.django_db(transaction=True)
def test_the_spool_holds_the_safe_text_and_an_older_unsafe_segment_still_replays(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RECORD_SPOOL": True, "RECORD_FLUSH_INTERVAL_S": 3600}
    recorder.call_record_enqueue(trace_id="t-spool", model_name="m", status="ok", request_text="a\x00b")
    [segment] = list(tmp_path.glob("record-spool/*/*.seg"))
    spooled = segment.read_bytes()
    assert b"\\u0000" not in spooled and "a\ufffdb".encode() in spooled  # orjson writes UTF-8
    recorder._reset_for_tests()  # as if this process had died: its record only on disk, unlocked
    # A segment written before text was made storable at enqueue: the NUL as it came.
    segment.write_bytes(spooled.replace("a\ufffdb".encode(), b"a\\u0000b"))

    assert recorder.call_records_replay() == 1
    recorder.call_records_flush()

    record = CallRecord.objects.get(trace_id="t-spool")
    assert (record.request_text, record.text_replaced) == ("a\ufffdb", True)


postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")


@pytest.mark.postgres
@postgres
@pytest.mark.django_db(transaction=True)
def test_nul_bytes_through_the_gateway_keep_every_record_and_the_budget(live_url, fake_provider):
    # The echo reply: "a\x00b" is one token in, two out ("Echo:", "a\x00b"): $0.001 + $0.004.
    price = {"input_cost_per_1k": Decimal("1"), "output_cost_per_1k": Decimal("2")}
    fake_provider.model("alpha", **price)
    _, raw = api_key_create(name="app", budget_usd=Decimal("0.012"), budget_period="day")
    client = openai.OpenAI(base_url=f"{live_url}/v1", api_key=raw, max_retries=0, timeout=20)

    served = refused = 0
    for _ in range(5):
        try:
            client.chat.completions.create(model="alpha", messages=[{"role": "user", "content": "a\u0000b"}])
            served += 1
        except openai.RateLimitError:
            refused += 1
        records_flush()

    records = list(CallRecord.objects.filter(model_name="alpha"))
    assert len(records) == served
    assert all(r.text_replaced and r.request_text == "user: a\ufffdb" for r in records)
    assert served == 3 and refused == 2  # the budget is spent by recorded calls, not passed
