"""The background writer thread: it flushes the queue every RECORD_FLUSH_INTERVAL_S (sooner when
the queue fills up), replays the spool of dead processes, and is stopped and flushed at exit
(atexit, and Celery's worker-process shutdown, which skips atexit)."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time

from django.db import close_old_connections, connection

from metrics.services.recorder.buffer import buffer, interval, wake
from metrics.services.recorder.writer import (
    OUTAGE_RETRY_S,
    call_records_flush,
    call_records_outage,
    call_records_replay,
    writer_after_fork,
)
from metrics.services.spool import spool_close, spool_enabled

logger = logging.getLogger(__name__)

REPLAY_EVERY_S = 60.0  # the writer looks for segments of dead processes at its start, then this often

_thread: threading.Thread | None = None
_thread_lock = threading.Lock()
_stopping = False


def _run() -> None:
    last = time.monotonic()
    replayed_at = -REPLAY_EVERY_S
    try:
        while not _stopping:
            if spool_enabled() and time.monotonic() - replayed_at >= REPLAY_EVERY_S:
                replayed_at = time.monotonic()
                if call_records_replay():
                    wake.set()
            every = interval()
            if every <= 0:
                return  # switched to inline writing: callers flush, this thread retires
            woken = wake.wait(timeout=min(every, 1.0))  # re-read the setting every second
            wake.clear()
            if _stopping:
                break  # whoever stops the thread flushes (at exit) or wants the records left as they are
            if not buffer or interval() <= 0:
                continue
            if not woken and time.monotonic() - last < every:
                continue  # not due yet (woken early only when the buffer fills up)
            if call_records_outage() and time.monotonic() - last < OUTAGE_RETRY_S:
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


def writer_thread_ensure() -> None:
    """Start the writer thread unless it runs."""
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
    wake.set()
    if buffer:
        try:
            call_records_flush()
        except Exception:  # pragma: no cover
            logger.exception("call records lost at exit")
    spool_close()


def _after_fork_in_child() -> None:
    """A forked worker must not write its parent's pending records a second time."""
    global _thread, _thread_lock
    buffer.clear()
    _thread = None
    _thread_lock = threading.Lock()
    writer_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _flush_at_worker_shutdown(**_: object) -> None:
    # Celery's prefork children leave through os._exit, which skips atexit.
    _flush_at_exit()


try:
    from celery.signals import worker_process_shutdown

    worker_process_shutdown.connect(_flush_at_worker_shutdown, weak=False)
except ImportError:  # pragma: no cover - celery is a dependency, but the recorder does not need it
    pass


def writer_thread_stop() -> None:
    """Stop the background writer thread and wait for it (it starts again on the next enqueue)."""
    global _thread, _stopping
    thread = _thread
    if thread is not None and thread.is_alive():
        _stopping = True
        wake.set()
        thread.join(timeout=10)
        _stopping = False
    _thread = None
