"""Short leases that a live worker keeps renewing, so a dead worker's hold lapses in seconds.

A Celery worker process starts one renewal thread (`renewal_start`, from the worker signals in
compare.tasks). While it runs, the provider slots the process holds (compare.slots) and the
cells it has claimed expire `lease_ttl_s()` after the last renewal (4 heartbeats,
settings.COMPARE_WORKER_HEARTBEAT_MS), instead of after the cell's whole time limit: a worker
killed with SIGKILL stops renewing, and its slots and claims are free again within seconds.

A process without the thread (eager mode, the web process, tests) takes long leases as before
(the cell's time limit plus margins), so nothing it holds can lapse under a live call. A live
worker whose renewal thread is starved for longer than the TTL can lose a claim early; the
cell's conditional updates (the claim counter) and its trace (a finished call is reused)
keep that from being billed twice.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections
from django.utils import timezone

from compare.models import CellStatus, CompareCell

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_slots: dict[str, float] = {}  # slot handle ("key|token") -> TTL it was taken with
_cells: set[int] = set()
_thread: threading.Thread | None = None
_stop = threading.Event()


def heartbeat_s() -> float:
    return max(0.05, int(settings.COMPARE_WORKER_HEARTBEAT_MS) / 1000)


def lease_ttl_s() -> float:
    """How long a renewed lease lasts after its last renewal."""
    return 4 * heartbeat_s()


def renewing() -> bool:
    """Is this process renewing its leases (a Celery worker with the renewal thread)?"""
    return _thread is not None and _thread.is_alive()


def lease_until() -> datetime | None:
    """When a claim taken now lapses if not renewed; None when this process does not renew
    (the claim then lasts the cell's whole lease, counted from its claimed_at)."""
    if not renewing():
        return None
    return timezone.now() + timedelta(seconds=lease_ttl_s())


def slot_hold(handle: str, ttl_s: float) -> None:
    with _lock:
        _slots[handle] = ttl_s


def slot_drop(handle: str) -> None:
    with _lock:
        _slots.pop(handle, None)


def cell_hold(cell_id: int) -> None:
    with _lock:
        _cells.add(cell_id)


def cell_drop(cell_id: int) -> None:
    with _lock:
        _cells.discard(cell_id)


def leases_renew() -> None:
    """One heartbeat: push back the expiry of every slot and claim this process holds."""
    with _lock:
        slots, cells = dict(_slots), list(_cells)
    for handle, ttl in slots.items():
        cache.touch(handle.partition("|")[0], timeout=max(1, round(ttl)))
    if cells:
        CompareCell.objects.filter(pk__in=cells, status=CellStatus.RUNNING).update(
            lease_until=timezone.now() + timedelta(seconds=lease_ttl_s())
        )


def _loop() -> None:
    failing_since = 0.0
    while not _stop.wait(heartbeat_s()):
        try:
            leases_renew()
            if failing_since:
                logger.warning("compare lease renewal works again")
                failing_since = 0.0
        except Exception as exc:  # a Redis or database hiccup: the next beat tries again
            if not failing_since or time.monotonic() - failing_since > 60:
                logger.warning("compare lease renewal failed (%s); retrying every heartbeat", exc)
                failing_since = time.monotonic()
            close_old_connections()
    close_old_connections()


def renewal_start() -> None:
    """Start this process's renewal thread (idempotent)."""
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        _stop.clear()
        _thread = threading.Thread(target=_loop, name="compare-lease-renewal", daemon=True)
        _thread.start()


def renewal_stop() -> None:
    """Stop renewing and give back the slots still held (a warm shutdown)."""
    global _thread
    _stop.set()
    thread, _thread = _thread, None
    if thread is not None:
        thread.join(timeout=5)
    with _lock:
        held = list(_slots)
        _slots.clear()
        _cells.clear()
    for handle in held:
        key, _, token = handle.partition("|")
        if cache.get(key) == token:  # still ours: it may have lapsed and been taken over
            cache.delete(key)
