"""The recorder: the one service that writes CallRecords (one per attempt at a provider).

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

import atexit
import contextlib
import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError, close_old_connections, connection, transaction
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from metrics.models import CallRecord
from metrics.services.inserts import call_record_row, call_records_insert, rows_per_statement
from metrics.services.spool import (
    Segment,
    spool_append,
    spool_claim,
    spool_close,
    spool_enabled,
    spool_release,
    spool_reset_for_tests,
    spool_rotate,
)
from metrics.services.storable import fields_storable

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
# While the database is unavailable the writer retries at this pace, not at every wake-up
# (a full buffer wakes it on every call), and logs at most this often.
OUTAGE_RETRY_S = 1.0
OUTAGE_LOG_EVERY_S = 60.0
_outage_since: float | None = None
_outage_logged_at = -OUTAGE_LOG_EVERY_S
MAX_PENDING = 200_000  # records kept in memory while the database is unavailable
# Small, frequent batches: one 200-row insert every 0.5 s held the cores long enough to show
# in the gateway's p99 (4.8 ms added at concurrency 1); 50-row batches every 0.1 s gave 3.1–3.9.
WAKE_AT = 50  # records waiting before the background thread wakes early
REPLAY_EVERY_S = 60.0  # the writer looks for segments of dead processes at its start, then this often

# (fields, on_written callback, spool segment holding the record)
Pending = tuple[dict[str, Any], Callable[[int], None] | None, Segment | None]
_buffer: deque[Pending] = deque()
_write_lock = threading.Lock()
_wake = threading.Event()
_thread: threading.Thread | None = None
_thread_lock = threading.Lock()
_stopping = False
_written = threading.Condition()
_written_total = 0
_warned_unknown_price: set[str] = set()


def _limit(name: str, default: int) -> int:
    return int(settings.ORCHESTRATOR.get(name, default))


def text_truncate(text: str, limit: int) -> str:
    if limit <= 0 or not text:
        return ""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def unknown_price_warn(model_name: str) -> None:
    """Log once per model (per process) that its calls are recorded without a cost."""
    if model_name in _warned_unknown_price:
        return
    _warned_unknown_price.add(model_name)
    logger.warning(
        "No price known for model %s: its calls are recorded with cost unknown (not $0). "
        "Set an override price on the model or update the price catalogue.",
        model_name,
    )


def call_record_enqueue(
    *,
    trace_id: str,
    model_name: str,
    status: str,
    attempt: int = 1,
    source: str = "api",
    role: str = "",
    route_id: int | None = None,
    task_type: str = "",
    chain_name: str = "",
    chain_step: int | None = None,
    prompt_version_id: int | None = None,
    model_id: int | None = None,
    provider_name: str = "",
    provider_kind: str = "",
    provider_model_id: str = "",
    api_key_id: int | None = None,
    error_class: str = "",
    http_status: int | None = None,
    error_message: str = "",
    latency_ms: float | None = None,
    ttft_ms: float | None = None,
    stream: bool = False,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cached_tokens: int = 0,
    input_price_per_1k: Decimal | None = None,
    output_price_per_1k: Decimal | None = None,
    price_source: str = "",
    cost_usd: Decimal | None = None,
    request_text: str = "",
    response_text: str = "",
    simulated: bool = False,
    created_at: datetime | None = None,
    on_written: Callable[[int], None] | None = None,
) -> bool:
    """Queue the CallRecord of one finished attempt for writing (cheap: no model instance,
    no database; the writer builds and inserts the rows in bulk).

    `on_written(pk)` is called with the row's id once it is in the database, from
    whichever thread wrote it. Returns False only if the fields could not even be prepared
    (logged)."""
    try:
        text_limit = _limit("RECORD_TEXT_LIMIT", 20_000)
        fields: dict[str, Any] = {
            "trace_id": trace_id,
            "source": source,
            "role": role[:16],
            "route_id": route_id,
            "task_type": task_type,
            "chain_name": chain_name,
            "chain_step": chain_step,
            "prompt_version_id": prompt_version_id,
            "model_id": model_id,
            "model_name": model_name[:100],
            "provider_name": provider_name,
            "provider_kind": provider_kind,
            "provider_model_id": provider_model_id[:200],
            "api_key_id": api_key_id,
            "attempt": attempt,
            "status": status,
            "error_class": error_class,
            "http_status": http_status,
            "error_message": text_truncate(error_message, _limit("ERROR_MESSAGE_LIMIT", 2_000)),
            "latency_ms": latency_ms,
            "ttft_ms": ttft_ms,
            "stream": stream,
            "input_tokens": max(int(input_tokens or 0), 0),
            "output_tokens": max(int(output_tokens or 0), 0),
            "cached_tokens": max(int(cached_tokens or 0), 0),
            "cost_usd": cost_usd,
            "input_price_per_1k": input_price_per_1k,
            "output_price_per_1k": output_price_per_1k,
            "price_source": price_source,
            "request_text": text_truncate(request_text, text_limit),
            "response_text": text_truncate(response_text, text_limit),
            "simulated": simulated,
            "created_at": created_at or timezone.now(),
        }
        fields_storable(fields)
    except Exception:
        logger.exception("could not prepare a call record for %s (trace %s)", model_name, trace_id)
        return False
    interval = _interval()
    # Inline writing (interval 0, the tests) writes before the call returns: nothing to spool.
    segment = spool_append(fields) if interval > 0 else None
    if len(_buffer) >= MAX_PENDING:
        _drop_oldest()
    _buffer.append((fields, on_written, segment))
    if interval > 0:
        _ensure_thread()
        if len(_buffer) >= WAKE_AT:
            _wake.set()
    return True


_dropped = 0


def _drop_oldest() -> None:
    global _dropped
    try:
        entry = _buffer.popleft()
    except IndexError:
        return
    spool_release([entry[2]])
    _dropped += 1
    if _dropped % 1000 == 1:
        logger.error("call record buffer full (database unavailable?): %d records dropped so far", _dropped)


def call_records_pending() -> int:
    return len(_buffer)


def _drain(limit: int) -> list[Pending]:
    batch: list[Pending] = []
    while _buffer and len(batch) < limit:
        try:
            batch.append(_buffer.popleft())
        except IndexError:
            break
    return batch


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
    _buffer.extendleft(reversed(entries))
    now = time.monotonic()
    if _outage_since is None:
        _outage_since = now
    if now - _outage_logged_at >= OUTAGE_LOG_EVERY_S:
        _outage_logged_at = now
        logger.warning(
            "writing call records failed (database unavailable for %.1f s); %d records kept for the "
            "next flush, retried every %.0f s",
            now - _outage_since,
            len(_buffer),
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
        todo = len(_buffer)
        # Records queued from now on go to a new spool segment: the one sealed here is deleted
        # once the records drained below are written.
        spool_rotate()
        while todo > 0:
            batch = _drain(min(BATCH_SIZE, todo))
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
    if not _buffer and not _write_lock.locked():
        return 0  # nothing queued and no batch being written by the background thread
    return await sync_to_async(call_records_flush, thread_sensitive=True)()


def _interval() -> float:
    return float(settings.ORCHESTRATOR.get("RECORD_FLUSH_INTERVAL_S", 0.5))


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
    _buffer.extend((fields_storable(fields), None, segment) for fields, segment in records)
    return len(records)


def _run() -> None:
    last = time.monotonic()
    replayed_at = -REPLAY_EVERY_S
    try:
        while not _stopping:
            if spool_enabled() and time.monotonic() - replayed_at >= REPLAY_EVERY_S:
                replayed_at = time.monotonic()
                if call_records_replay():
                    _wake.set()
            interval = _interval()
            if interval <= 0:
                return  # switched to inline writing: callers flush, this thread retires
            woken = _wake.wait(timeout=min(interval, 1.0))  # re-read the setting every second
            _wake.clear()
            if _stopping:
                break  # whoever stops the thread flushes (at exit) or wants the records left as they are
            if not _buffer or _interval() <= 0:
                continue
            if not woken and time.monotonic() - last < interval:
                continue  # not due yet (woken early only when the buffer fills up)
            if _outage_since is not None and time.monotonic() - last < OUTAGE_RETRY_S:
                continue  # the database was unavailable a moment ago: retry at a gentle pace
            last = time.monotonic()
            try:
                call_records_flush()
            except Exception:  # pragma: no cover - call_records_flush logs and never raises
                logger.exception("call record writer failed")
            finally:
                # Honour CONN_MAX_AGE, and drop a broken connection so the next round reconnects.
                with contextlib.suppress(Exception):
                    close_old_connections()
                    if connection.connection is not None and not connection.is_usable():
                        connection.close()
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def _ensure_thread() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _thread_lock:
        if _thread is not None and _thread.is_alive():
            return
        _thread = threading.Thread(target=_run, name="call-record-writer", daemon=True)
        _thread.start()


@atexit.register
def _flush_at_exit() -> None:
    global _stopping
    _stopping = True
    _wake.set()
    if _buffer:
        try:
            call_records_flush()
        except Exception:  # pragma: no cover
            logger.exception("call records lost at exit")
    spool_close()


def _after_fork_in_child() -> None:
    """A forked worker must not write its parent's pending records a second time."""
    global _thread, _write_lock, _written, _thread_lock
    _buffer.clear()
    _thread = None
    _write_lock = threading.Lock()
    _thread_lock = threading.Lock()
    _written = threading.Condition()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _flush_at_worker_shutdown(**_: object) -> None:
    # Celery's prefork children leave through os._exit, which skips atexit.
    _flush_at_exit()


try:
    from celery.signals import worker_process_shutdown

    worker_process_shutdown.connect(_flush_at_worker_shutdown, weak=False)
except ImportError:  # pragma: no cover - celery is a dependency, but the recorder does not need it
    pass


def _writer_stop() -> None:
    """Stop the background writer thread and wait for it (it starts again on the next enqueue)."""
    global _thread, _stopping
    thread = _thread
    if thread is not None and thread.is_alive():
        _stopping = True
        _wake.set()
        thread.join(timeout=10)
        _stopping = False
    _thread = None


def _reset_for_tests() -> None:
    """Each test starts with no queued records and no writer thread (a thread left by an
    earlier test would replay or write beside the test's own calls)."""
    global _outage_since, _outage_logged_at
    _writer_stop()
    _buffer.clear()
    _outage_since, _outage_logged_at = None, -OUTAGE_LOG_EVERY_S
    spool_reset_for_tests()
    _warned_unknown_price.clear()
