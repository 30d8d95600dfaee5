"""The record spool: records of a process killed outright are written by the next process to
record, exactly once; a live process keeps its own; the spool never fails a call."""

import logging
import math
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from metrics import services as recorder
from metrics.models import CallRecord
from metrics.services.spool.format import HEADER, line_encode, segment_decode
from routing import orchestrator
from tests.fake_provider import fake_provider_fixture  # noqa: F401
from tests.metrics.conftest import subprocess_env
from tests.routing.engine.conftest import clean_engine  # noqa: F401  (a clean engine per test)

MESSAGES = [{"role": "user", "content": "one two three four"}]
PRICE = Decimal("0.0000123456")

# Queues 30 records (fewer than the 50 that wake the writer early) with an hour's flush
# interval, says so, then waits for its stdin to close (a normal exit) or to be killed.
QUEUE_AND_WAIT = """
import sys
from datetime import UTC, datetime
from decimal import Decimal
import django
django.setup()
from django.conf import settings
settings.ORCHESTRATOR["RECORD_FLUSH_INTERVAL_S"] = 3600
from metrics.services import call_record_enqueue
for attempt in range(1, 31):
    call_record_enqueue(trace_id=sys.argv[1], model_name="m", status="ok", attempt=attempt,
                        cost_usd=Decimal("0.0000123456"),
                        created_at=datetime(2025, 3, 1, 12, 0, attempt, 654321, tzinfo=UTC))
print("queued", flush=True)
sys.stdin.read()
"""

# Starts recording (one record of its own) and returns once sys.argv[1] records are written.
RECORD = """
import sys
import django
django.setup()
from django.conf import settings
settings.ORCHESTRATOR["RECORD_FLUSH_INTERVAL_S"] = 0.05
from metrics.services import call_record_enqueue, call_records_wait
call_record_enqueue(trace_id="next", model_name="m", status="ok")
assert call_records_wait(int(sys.argv[1]), timeout=30), "records not written in time"
"""


def segments(var_dir: Path) -> list[Path]:
    return sorted(var_dir.glob("record-spool/*/*.seg"))


def spool_env(var_dir: Path) -> dict[str, str]:
    return {**subprocess_env(var_dir), "ORCHESTRATOR_RECORD_SPOOL": "true"}


def start_queueing(trace_id: str, var_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", QUEUE_AND_WAIT, trace_id],
        env=spool_env(var_dir),
        cwd=django_settings.BASE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline() != "queued\n":
        proc.kill()
        pytest.fail(f"the queueing process failed: {proc.communicate(timeout=30)[1][-3000:]}")
    return proc


def record_in_another_process(var_dir: Path, *, wait_for: int) -> None:
    subprocess.run(
        [sys.executable, "-c", RECORD, str(wait_for)],
        env=spool_env(var_dir),
        cwd=django_settings.BASE_DIR,
        check=True,
        timeout=60,
    )


def attempts(trace_id: str) -> list[int]:
    return sorted(CallRecord.objects.filter(trace_id=trace_id).values_list("attempt", flat=True))


@pytest.fixture
def spool(settings, tmp_path) -> Path:
    """The spool on, in a VAR_DIR of its own, with an hour's flush interval (tests flush)."""
    settings.VAR_DIR = tmp_path
    settings.ORCHESTRATOR = {**settings.ORCHESTRATOR, "RECORD_SPOOL": True, "RECORD_FLUSH_INTERVAL_S": 3600}
    return tmp_path


@pytest.mark.django_db(transaction=True)
def test_records_of_a_process_killed_outright_are_written_once_by_the_next_process_to_record(tmp_path):
    killed = start_queueing("killed", tmp_path)
    killed.kill()  # SIGKILL: no atexit, no flush
    killed.communicate(timeout=30)
    assert attempts("killed") == []
    assert len(segments(tmp_path)) == 1

    record_in_another_process(tmp_path, wait_for=31)  # its own record and the 30 replayed

    assert attempts("killed") == list(range(1, 31))
    rows = CallRecord.objects.filter(trace_id="killed")
    assert {row.cost_usd for row in rows} == {PRICE}
    assert {row.created_at.second: row.created_at for row in rows}[7] == datetime(
        2025, 3, 1, 12, 0, 7, 654321, tzinfo=UTC
    )
    assert CallRecord.objects.filter(trace_id="next").count() == 1
    assert segments(tmp_path) == []


@pytest.mark.django_db(transaction=True)
def test_the_segments_of_a_live_process_are_not_taken_by_another(tmp_path):
    live = start_queueing("live", tmp_path)
    try:
        record_in_another_process(tmp_path, wait_for=1)

        assert attempts("live") == []
        assert len(segments(tmp_path)) == 1  # the live process's; the other deleted its own
    finally:
        live.communicate(timeout=60)  # stdin closed: a normal exit, which writes its records

    assert live.returncode == 0
    assert attempts("live") == list(range(1, 31))
    assert segments(tmp_path) == []


@pytest.mark.django_db(transaction=True)
def test_a_replay_after_a_crash_between_commit_and_delete_writes_no_duplicates(spool):
    when = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    for attempt in (1, 2, 3):
        recorder.call_record_enqueue(
            trace_id="t", model_name="m", status="ok", attempt=attempt, cost_usd=PRICE, created_at=when
        )
    [segment] = segments(spool)
    spooled = segment.read_bytes()
    assert recorder.call_records_flush() == 3
    assert not segment.exists()  # deleted once its records were committed
    # The segment of a process that died after committing, before deleting it (say its last
    # record went in a batch that never committed).
    CallRecord.objects.filter(attempt=3).delete()
    (segment.parent / "4242-dead-0.seg").write_bytes(spooled)

    assert recorder.call_records_replay() == 3
    recorder.call_records_flush()

    assert attempts("t") == [1, 2, 3]
    record = CallRecord.objects.get(attempt=3)
    assert (record.cost_usd, record.created_at) == (PRICE, when)
    assert segments(spool) == []


@pytest.mark.django_db(transaction=True)
def test_records_waiting_for_the_database_stay_spooled_until_written(spool):
    recorder.call_record_enqueue(trace_id="waits", model_name="m", status="ok")
    table = CallRecord._meta.db_table
    with connection.cursor() as cursor:  # every insert of a record is refused
        cursor.execute(f"ALTER TABLE {table} RENAME TO records_away")
    try:
        assert recorder.call_records_flush() == 0
        [segment] = segments(spool)
        assert b'"waits"' in segment.read_bytes()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE records_away RENAME TO {table}")

    assert recorder.call_records_flush() == 1

    assert CallRecord.objects.get().trace_id == "waits"
    assert segments(spool) == []


@pytest.mark.django_db(transaction=True)
def test_a_forked_child_spools_to_a_segment_of_its_own(spool):
    recorder.call_record_enqueue(trace_id="parent", model_name="m", status="ok")
    [parent_segment] = segments(spool)

    pid = os.fork()
    if pid == 0:  # the child queues a record, then dies without writing it
        try:
            recorder.call_record_enqueue(trace_id="child", model_name="m", status="ok")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)

    [child_segment] = [s for s in segments(spool) if s != parent_segment]
    assert b'"parent"' in parent_segment.read_bytes()
    assert b'"child"' not in parent_segment.read_bytes()
    assert b'"child"' in child_segment.read_bytes()
    assert recorder.call_records_replay() == 1  # the dead child's segment, not ours
    recorder.call_records_flush()
    assert sorted(CallRecord.objects.values_list("trace_id", flat=True)) == ["child", "parent"]
    assert segments(spool) == []


def test_an_unwritable_spool_directory_does_not_fail_the_call(fake_provider, spool, caplog):
    (spool / "record-spool").write_text("a file where the spool directory should be")
    fake_provider.model("a")
    caplog.set_level(logging.ERROR, logger="metrics.services")

    first = orchestrator.complete(MESSAGES, model="a")
    second = orchestrator.complete(MESSAGES, model="a")

    assert "one two three four" in first.text
    assert sorted(CallRecord.objects.values_list("trace_id", flat=True)) == sorted(
        [first.trace_id, second.trace_id]
    )
    assert len([r for r in caplog.records if "spool off" in r.getMessage()]) == 1


@pytest.mark.django_db(transaction=True)
def test_a_full_disk_turns_the_spool_off_without_losing_a_record(tmp_path):
    script = """
import resource, signal
import django
django.setup()
from django.conf import settings
settings.ORCHESTRATOR["RECORD_FLUSH_INTERVAL_S"] = 3600
from metrics.services import call_record_enqueue
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) or is cut short
limits = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (2000, limits[1]))  # the disk is full after a few records
for attempt in range(1, 21):
    call_record_enqueue(trace_id="full", model_name="m", status="ok", attempt=attempt)
resource.setrlimit(resource.RLIMIT_FSIZE, limits)  # room again for the database, at exit
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=spool_env(tmp_path),
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("call record spool off") == 1
    assert attempts("full") == list(range(1, 21))
    assert segments(tmp_path) == []


@pytest.mark.django_db(transaction=True)
def test_a_line_cut_short_is_skipped_and_the_others_are_replayed(spool, caplog):
    for attempt in (1, 2):
        recorder.call_record_enqueue(trace_id="cut", model_name="m", status="ok", attempt=attempt)
    [segment] = segments(spool)
    recorder._reset_for_tests()  # as if this process had died: its records only on disk, unlocked
    last = segment.read_bytes().splitlines()[-1]
    with segment.open("ab") as file:
        file.write(last[: len(last) // 2])  # a third record, cut short (the disk filled up)
    caplog.set_level(logging.WARNING, logger="metrics.services")

    assert recorder.call_records_replay() == 2
    recorder.call_records_flush()

    assert attempts("cut") == [1, 2]
    assert any("1 unreadable line(s) skipped" in r.getMessage() for r in caplog.records)
    assert segments(spool) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"response_text": "naïve café — 東京 🚀", "latency_ms": 12.5},
        {"response_text": "a lone surrogate \ud800 here", "latency_ms": 1.0},
        {"response_text": "", "latency_ms": float("nan")},
        {"response_text": "", "latency_ms": float("inf")},
        {"response_text": "", "input_tokens": 2**70},
    ],
    ids=["non-ascii", "lone-surrogate", "nan", "infinity", "huge-integer"],
)
def test_a_spooled_line_reads_back_as_the_fields_it_was_written_from(fields):
    created = datetime(2025, 3, 1, 12, 0, 1, 654321, tzinfo=UTC)
    record = {"trace_id": "t", "cost_usd": PRICE, "created_at": created, **fields}
    header = line_encode({HEADER: list(record)})

    [decoded], bad = segment_decode([header, line_encode(list(record.values()))])

    assert bad == 0
    if fields.get("latency_ms") != fields.get("latency_ms"):  # NaN, which equals nothing
        assert math.isnan(decoded.pop("latency_ms"))
        del record["latency_ms"]
    assert decoded == record
    assert type(decoded["cost_usd"]) is Decimal


@pytest.mark.django_db(transaction=True)
def test_records_with_text_beyond_ascii_are_replayed_as_they_were(spool):
    text = "naïve café — 東京 🚀"
    recorder.call_record_enqueue(
        trace_id="utf8", model_name="m", status="ok", response_text=text, latency_ms=3.5
    )
    recorder._reset_for_tests()  # as if this process had died: its record only on disk, unlocked

    assert recorder.call_records_replay() == 1
    recorder.call_records_flush()

    [row] = CallRecord.objects.filter(trace_id="utf8")
    assert (row.response_text, row.latency_ms) == (text, 3.5)
