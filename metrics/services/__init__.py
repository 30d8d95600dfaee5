"""Writes of the metrics app. The recorder (`recorder/`) is the one service that writes
CallRecords; `inserts.py` holds the SQL it writes them with, `spool.py` the on-disk copy of
the records not written yet (replayed after a crash)."""

from metrics.services.recorder import (
    _reset_for_tests,
    acall_records_flush,
    call_record_enqueue,
    call_records_flush,
    call_records_outage,
    call_records_pending,
    call_records_replay,
    call_records_wait,
    call_records_written,
    text_truncate,
    unknown_price_warn,
)

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
