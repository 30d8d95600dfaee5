"""The recorder: the one service that writes CallRecords (one per attempt at a provider).

Modules: `buffer` (the in-process queue), `enqueue` (queueing one record), `writer` (writing
the queue to the database), `thread` (the background writer, exit and fork handling).

The engine must not wait for the database on the hot path, so `call_record_enqueue` only
appends the record's fields to an in-process buffer; records reach the database in bulk
(`metrics.services.inserts`: plain rows, no model instances):

- from a background thread every ORCHESTRATOR["RECORD_FLUSH_INTERVAL_S"] seconds (or sooner
  when the buffer fills up);
- whenever `call_records_flush()` / `acall_records_flush()` is called: it writes everything
  enqueued so far in the caller's thread (its DB connection, its transaction) and returns
  once it is written; the engine's sync wrappers call it before returning;
- at process exit (atexit), so a normal shutdown loses nothing.

With a flush interval (not in tests) each record is also appended to an on-disk spool
(`metrics.services.spool`) until it is written, so a process killed outright loses nothing
either: the next process to start recording replays what it had not written.

Recording never makes a call fail: every error here is caught and logged. A batch the
database refuses (say a model deleted meanwhile) is retried row by row with its foreign
keys cleared, so one bad row does not lose the others.
"""

from __future__ import annotations

from metrics.services.recorder.buffer import buffer, call_records_pending
from metrics.services.recorder.enqueue import (
    call_record_enqueue,
    enqueue_reset_for_tests,
    text_truncate,
    unknown_price_warn,
)
from metrics.services.recorder.thread import writer_thread_stop
from metrics.services.recorder.writer import (
    acall_records_flush,
    call_records_flush,
    call_records_outage,
    call_records_replay,
    call_records_wait,
    call_records_written,
    writer_reset_for_tests,
)
from metrics.services.spool import spool_reset_for_tests

__all__ = [
    "_reset_for_tests",
    "acall_records_flush",
    "call_record_enqueue",
    "call_records_flush",
    "call_records_outage",
    "call_records_pending",
    "call_records_replay",
    "call_records_wait",
    "call_records_written",
    "text_truncate",
    "unknown_price_warn",
]


def _reset_for_tests() -> None:
    """Each test starts with no queued records and no writer thread (a thread left by an
    earlier test would replay or write beside the test's own calls)."""
    writer_thread_stop()
    buffer.clear()
    writer_reset_for_tests()
    spool_reset_for_tests()
    enqueue_reset_for_tests()
