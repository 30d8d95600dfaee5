"""Writing queued call records to the database: in bulk, row by row when a batch is refused,
kept for later while the database is unavailable, each record once (replayed ones too)."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DatabaseError, DataError, IntegrityError, transaction
from django.db.transaction import TransactionManagementError

from metrics.models import CallRecord
from metrics.services.inserts import call_record_row, call_records_insert, rows_per_statement
from metrics.services.recorder.buffer import Pending, buffer, drain
from metrics.services.spool import Segment, spool_claim, spool_release, spool_rotate
from metrics.services.storable import fields_storable

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
# While the database is unavailable the writer retries at this pace, not at every wake-up
# (a full buffer wakes it on every call), and logs at most this often.
OUTAGE_RETRY_S = 1.0
OUTAGE_LOG_EVERY_S = 60.0
_outage_since: float | None = None
_outage_logged_at = -OUTAGE_LOG_EVERY_S
_write_lock = threading.Lock()
_written = threading.Condition()
_written_total = 0


def _write(entries: list[Pending]) -> tuple[int, bool]:
    """Write one batch; returns (rows written, whether the database took writes at all)."""
    try:
        entries = _not_yet_written(entries)
    except DatabaseError:
        _keep_for_later(entries)
        return 0, False
    rows: list[list[Any]] = []
    kept: list[Pending] = []
    for entry in entries:
        try:
            rows.append(call_record_row(entry[0]))
        except Exception:
            logger.exception("call record lost (could not be prepared): %s", entry[0].get("trace_id"))
            spool_release([entry[2]])
            continue
        kept.append(entry)
    if not rows:
        return 0, True
    ids: list[int] = []
    try:
        # A savepoint: a refused batch must not break a caller's surrounding transaction.
        with transaction.atomic():
            chunk = rows_per_statement()
            for start in range(0, len(rows), chunk):
                ids += call_records_insert(rows[start : start + chunk])
                time.sleep(0)  # let the event loop's thread take the GIL between statements
    except (IntegrityError, DataError):
        # Some row points at something deleted meanwhile, or holds a value the column cannot
        # take: write them one by one, so one bad row does not lose the others.
        logger.warning("bulk write of %d call records refused; writing them one by one", len(kept))
        written = sum(_write_one(fields, callback) for fields, callback, _ in kept)
        _spool_release_after_commit(kept)
        return written, True
    except DatabaseError:
        # The database is unavailable (locked, down): keep the records for a later flush.
        _keep_for_later(kept)
        return 0, False
    _spool_release_after_commit(kept)
    for (_, callback, _), pk in zip(kept, ids, strict=True):
        _notify(callback, pk)
    return len(ids), True


def _keep_for_later(entries: list[Pending]) -> None:
    """Queue the records again for the next flush: an unavailable database (down, locked,
    failing over) loses none of them, however long it lasts; MAX_PENDING bounds the memory."""
    global _outage_since, _outage_logged_at
    buffer.extendleft(reversed(entries))
    now = time.monotonic()
    if _outage_since is None:
        _outage_since = now
    if now - _outage_logged_at >= OUTAGE_LOG_EVERY_S:
        _outage_logged_at = now
        logger.warning(
            "writing call records failed (database unavailable for %.1f s); %d records kept for the "
            "next flush, retried every %.0f s",
            now - _outage_since,
            len(buffer),
            OUTAGE_RETRY_S,
            exc_info=True,
        )


def _outage_over() -> None:
    global _outage_since, _outage_logged_at
    if _outage_since is None:
        return
    logger.warning(
        "call records are written again after %.1f s of database outage", time.monotonic() - _outage_since
    )
    _outage_since = None
    _outage_logged_at = -OUTAGE_LOG_EVERY_S


def call_records_outage() -> bool:
    """Whether the last write found the database unavailable (records are waiting)."""
    return _outage_since is not None


_TRACE_ID_LENGTH = 32  # CallRecord.trace_id's max_length: a longer one is stored cut


def _record_key(fields: dict[str, Any]) -> tuple[Any, ...]:
    trace_id = fields.get("trace_id")
    if isinstance(trace_id, str):
        trace_id = trace_id[:_TRACE_ID_LENGTH]
    return (trace_id, fields.get("attempt", 1), fields.get("model_name"), fields.get("created_at"))


def _not_yet_written(entries: list[Pending]) -> list[Pending]:
    """Leave out the replayed records already in the table (their process died after its batch
    committed, before it deleted the segment): one query per batch. Raises DatabaseError."""
    replayed = {
        _record_key(fields) for fields, _, segment in entries if segment is not None and segment.claimed
    }
    if not replayed:
        return entries
    existing = set(
        CallRecord.objects.filter(trace_id__in={key[0] for key in replayed}).values_list(
            "trace_id", "attempt", "model_name", "created_at"
        )
    )
    if not existing & replayed:
        return entries
    fresh: list[Pending] = []
    written: list[Segment | None] = []
    for entry in entries:
        segment = entry[2]
        if segment is not None and segment.claimed and _record_key(entry[0]) in existing:
            written.append(segment)
        else:
            fresh.append(entry)
    logger.info("%d replayed call records were already written; skipped", len(written))
    spool_release(written)
    return fresh


def _spool_release_after_commit(entries: list[Pending]) -> None:
    """Release the records' spool lines once they are committed (at once outside a transaction;
    inside a caller's, when it commits; if it rolls back, they stay spooled)."""
    segments = [segment for _, _, segment in entries if segment is not None]
    if not segments:
        return
    try:
        transaction.on_commit(functools.partial(spool_release, segments), robust=True)
    except TransactionManagementError:  # manual transaction management: no commit hook
        spool_release(segments)


def _notify(callback: Callable[[int], None] | None, pk: int | None) -> None:
    if callback is None or pk is None:
        return
    try:
        callback(pk)
    except Exception:
        logger.exception("a call record's on_written callback failed")


def _write_one(fields: dict[str, Any], callback: Callable[[int], None] | None) -> int:
    """The slow path, through the ORM: one record, and again without its links when a
    referenced row (model, route, prompt, key) is gone."""
    for links in (True, False):
        try:
            record = CallRecord(**fields)
            if not links:
                record.model_id = record.route_id = record.prompt_version_id = record.api_key_id = None
            with transaction.atomic():
                record.save(force_insert=True)
        except Exception:
            if not links:
                logger.exception(
                    "call record lost: %s #%s %s",
                    fields.get("trace_id"),
                    fields.get("attempt"),
                    fields.get("model_name"),
                )
            continue
        _notify(callback, record.pk)
        return 1
    return 0


def call_records_flush() -> int:
    """Write every record queued so far, in the calling thread; returns how many were written.

    Sync: call it from sync code (or through `acall_records_flush`). Never raises. When the
    database is unavailable, the records stay queued for the next flush."""
    global _written_total
    written = 0
    with _write_lock:
        todo = len(buffer)
        # Records queued from now on go to a new spool segment: the one sealed here is deleted
        # once the records drained below are written.
        spool_rotate()
        while todo > 0:
            batch = drain(min(BATCH_SIZE, todo))
            if not batch:
                break
            todo -= len(batch)
            try:
                count, available = _write(batch)
            except Exception:
                logger.exception("%d call records could not be written", len(batch))
                spool_release(entry[2] for entry in batch)
                continue
            written += count
            if not available:
                break
            _outage_over()
    if written:
        with _written:
            _written_total += written
            _written.notify_all()
    return written


def call_records_wait(count: int, timeout: float = 10.0) -> bool:
    """Block until at least `count` records were written since start-up (tests, benchmarks)."""
    with _written:
        return _written.wait_for(lambda: _written_total >= count, timeout=timeout)


def call_records_written() -> int:
    return _written_total


async def acall_records_flush() -> int:
    """Async twin of `call_records_flush` (runs in Django's thread-sensitive executor, so it
    shares the caller's database connection and transaction, as the ORM would)."""
    if not buffer and not _write_lock.locked():
        return 0  # nothing queued and no batch being written by the background thread
    return await sync_to_async(call_records_flush, thread_sensitive=True)()


def call_records_replay() -> int:
    """Queue for writing the spooled records of processes that died before writing them
    (their segments' locks are free); returns how many were queued. The writer thread does
    this when it starts and every REPLAY_EVERY_S. Never raises."""
    try:
        records = spool_claim()
    except Exception:  # pragma: no cover - spool_claim logs and never raises
        logger.exception("could not replay the call record spool")
        return 0
    # Segments written before text was made storable at enqueue may hold a NUL: not any more.
    buffer.extend((fields_storable(fields), None, segment) for fields, segment in records)
    return len(records)


def writer_after_fork() -> None:
    """A forked child gets locks of its own (its parent's may have been held at the fork)."""
    global _write_lock, _written
    _write_lock = threading.Lock()
    _written = threading.Condition()


def writer_reset_for_tests() -> None:
    global _outage_since, _outage_logged_at
    _outage_since, _outage_logged_at = None, -OUTAGE_LOG_EVERY_S
