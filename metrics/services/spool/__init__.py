"""The record spool: call records kept on disk until they are in the database, so that a
process killed outright (SIGKILL, the OOM killer, a crashed worker) loses none of them.

- At enqueue the recorder appends the record's fields to this process's current segment,
  `<VAR_DIR>/record-spool/<database>/<pid>-<time>-<n>.seg`: one JSON line per record, one
  unbuffered write(2), no fsync (it survives a process crash, not a power cut). A segment
  starts with a header naming the fields; each record is then the array of their values
  (a third cheaper to encode than an object; a record with other fields is an object).
- The process holds an exclusive `flock` on each of its segments for as long as it has them,
  so another process tells a live owner's segment (lock refused) from a dead one's (taken).
- Each segment counts its records still in memory. The writer seals the current segment when
  it drains the buffer (records queued from then on go to a new one); a sealed segment is
  deleted once each of its records has left memory: written and committed, refused by the
  database for its content, or given up (both logged). Records waiting for the database
  keep their segment.
- A process that starts recording claims the segments whose lock it can take (their owner is
  dead) and hands their records to the normal write path, which skips those already in the
  table (the owner may have died between its commit and the delete); a claimed segment is
  deleted once its records are written, like any other.

The spool never makes a call fail nor holds back the in-memory path: a failure of its own
(read-only or full disk, permissions) is logged once, and the process carries on without it.
The directory is per database (a hash of its settings), so records never replay into another.
The segment format (header, lines, decoding) is in `format`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.db import connection

from metrics.services.spool.format import ENCODER, HEADER, line_encode, segment_decode

logger = logging.getLogger(__name__)

CLAIM_MAX = 64  # dead segments claimed (locks held) at once; the rest at the next replay
SEALED_MAX = 8  # own sealed segments waiting for the database before the current one stops rotating


class Segment:
    """One spool file and its open, locked descriptor."""

    __slots__ = ("claimed", "fd", "keys", "path", "pending", "sealed")

    def __init__(self, path: str, fd: int, *, keys: tuple[str, ...] = (), claimed: bool = False) -> None:
        self.path = path
        self.fd = fd
        self.keys = keys  # the fields named by its header: records with these are written as arrays
        self.pending = 0  # records of this segment still in memory
        self.sealed = claimed  # no more records go into it: deleted when pending falls to 0
        self.claimed = claimed  # a dead process's segment: its records may already be written


_lock = threading.Lock()
_current: Segment | None = None
_open: set[Segment] = set()  # every segment this process holds (current, sealed, claimed)
_off = False  # set after a failure of the spool itself: this process goes on without it
_directory: str | None = None
_sequence = itertools.count()
_warned_unencodable = False


def _write_holding_the_gil() -> Callable[[int, bytes], int]:
    """libc's write(2), called through ctypes.PyDLL, which keeps the GIL (os.write releases it).

    A write to the page cache takes a few µs. But on a busy event loop each release of the GIL
    hands it to a thread waiting for it (the record writer, sync_to_async workers) and the
    loop then waits to get it back: with os.write, three more futex calls per record and 0.04 ms
    more CPU per gateway request at concurrency 32 (7% of it). os.write where libc is not found."""
    try:
        libc_write = ctypes.PyDLL(None, use_errno=True).write
    except (OSError, AttributeError):  # pragma: no cover - every Linux and macOS libc has write
        return os.write
    libc_write.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
    libc_write.restype = ctypes.c_ssize_t

    def write(fd: int, data: bytes) -> int:
        written = libc_write(fd, data, len(data))
        if written < 0:
            errno = ctypes.get_errno()
            raise OSError(errno, os.strerror(errno))
        return int(written)

    return write


_write = _write_holding_the_gil()


def spool_enabled() -> bool:
    return not _off and bool(settings.ORCHESTRATOR.get("RECORD_SPOOL", True))


def spool_directory() -> str:
    """`<VAR_DIR>/record-spool/<vendor>-<hash of the database's settings>`."""
    global _directory
    if _directory is None:
        db = connection.settings_dict
        identity = "|".join(str(db.get(key) or "") for key in ("ENGINE", "HOST", "PORT", "NAME"))
        digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
        _directory = os.path.join(settings.VAR_DIR, "record-spool", f"{connection.vendor}-{digest}")
    return _directory


def _turn_off(doing: str, exc: BaseException) -> None:
    """Log once, seal the current segment and stop spooling in this process. Under _lock."""
    global _off, _current
    if _off:
        return
    _off = True
    if _current is not None:
        _current.sealed = True
        if _current.pending <= 0:
            _open.discard(_current)
            _delete(_current)
        _current = None
    logger.error(
        "call record spool off in this process: could not %s (%s); records are kept in memory only "
        "until written, as with ORCHESTRATOR_RECORD_SPOOL=false",
        doing,
        exc,
    )


def _segment_new(keys: tuple[str, ...]) -> Segment:
    """Create and lock a new segment. Another process that scans the directory may lock the
    new, empty file first and delete it: then the inode check fails and we try another name."""
    directory = spool_directory()
    for _ in range(3):
        path = os.path.join(directory, f"{os.getpid()}-{time.time_ns():x}-{next(_sequence)}.seg")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(path, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except OSError:
            pass
        os.close(fd)
    else:
        raise OSError(f"could not lock a new segment in {directory}")
    header = (ENCODER.encode({HEADER: keys}) + "\n").encode("ascii")
    try:
        if _write(fd, header) != len(header):
            raise OSError("short write (disk full?)")
    except OSError:
        _delete(Segment(path, fd))
        raise
    return Segment(path, fd, keys=keys)


def spool_append(fields: dict[str, Any]) -> Segment | None:
    """Append one record to the current segment; returns the segment (to release once the
    record has left memory), or None when the record is not spooled. Never raises."""
    global _current, _warned_unencodable
    if _off or not settings.ORCHESTRATOR.get("RECORD_SPOOL", True):
        return None
    keys = tuple(fields)
    with _lock:  # held for a few bytecodes only: the encoding and the write run without it
        segment = _current
        if segment is None:
            try:
                segment = _current = _segment_new(keys)
            except Exception as exc:
                _turn_off("create a record spool segment", exc)
                return None
            _open.add(segment)
        segment.pending += 1  # counted first: the segment is not deleted before this record is written
    try:
        data = line_encode(list(fields.values()) if keys == segment.keys else fields)
    except (TypeError, ValueError) as exc:
        if not _warned_unencodable:
            _warned_unencodable = True
            logger.warning("a call record could not be spooled (kept in memory only): %s", exc)
        spool_release([segment])
        return None
    try:
        # One write(2) of one line, unbuffered. O_APPEND: concurrent appends from several
        # threads never overwrite each other.
        if _write(segment.fd, data) != len(data):
            raise OSError("short write (disk full?)")
    except Exception as exc:
        with _lock:
            _turn_off("write to the record spool", exc)
        spool_release([segment])
        return None
    return segment


def spool_release(segments: Iterable[Segment | None]) -> None:
    """The records of these segments (one entry per record) have left memory."""
    counts: dict[Segment, int] = {}
    for segment in segments:
        if segment is not None:
            counts[segment] = counts.get(segment, 0) + 1
    if not counts:
        return
    done: list[Segment] = []
    with _lock:
        for segment, count in counts.items():
            segment.pending -= count
            if segment.pending <= 0 and segment.sealed and segment in _open:
                _open.discard(segment)
                done.append(segment)
    for segment in done:
        _delete(segment)


def _delete(segment: Segment) -> None:
    """Unlink, then unlock: no other process may lock the file while it is still named."""
    try:
        os.unlink(segment.path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        # Left behind: the next process to claim it skips the records already written.
        logger.warning("could not delete the record spool segment %s: %s", segment.path, exc)
    with contextlib.suppress(OSError):
        os.close(segment.fd)


def spool_rotate() -> None:
    """Seal the current segment (the writer is about to drain the buffer): records queued from
    now on go to a new one. While SEALED_MAX of ours still wait for the database, the current
    one is kept instead (no pile of open files during an outage)."""
    global _current
    with _lock:
        segment = _current
        if segment is None:
            return
        if sum(1 for s in _open if s.sealed and not s.claimed) >= SEALED_MAX:
            return
        _current = None
        segment.sealed = True
        if segment.pending > 0:
            return
        _open.discard(segment)
    _delete(segment)


def spool_claim() -> list[tuple[dict[str, Any], Segment]]:
    """Claim the segments of dead processes (lock taken) and return their records, each with
    its segment, to be written and released like any other. Never raises."""
    if not spool_enabled():
        return []
    directory = spool_directory()
    try:
        names = sorted(name for name in os.listdir(directory) if name.endswith(".seg"))
    except FileNotFoundError:
        return []
    except OSError as exc:
        with _lock:
            _turn_off(f"read {directory}", exc)
        return []
    records: list[tuple[dict[str, Any], Segment]] = []
    claimed = 0
    for name in names:
        if claimed >= CLAIM_MAX:
            break
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue  # deleted meanwhile, or not ours to read
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                raise FileNotFoundError(path)  # deleted (and unlocked) by its owner meanwhile
            with open(fd, "rb", closefd=False) as file:
                lines = file.read().splitlines()
        except OSError:
            os.close(fd)  # a live owner's (lock refused), or gone
            continue
        segment = Segment(path, fd, claimed=True)
        decoded, bad = segment_decode(lines)
        records += [(fields, segment) for fields in decoded]
        segment.pending = len(decoded)
        if bad:
            logger.warning("%d unreadable line(s) skipped in the record spool segment %s", bad, path)
        claimed += 1
        if segment.pending:
            with _lock:
                _open.add(segment)
        else:
            _delete(segment)
    if records:
        logger.warning("replaying %d call records of stopped processes from %s", len(records), directory)
    return records


def spool_close() -> None:
    """At exit, after the last flush: delete the segments whose records are all written; the
    others (database unavailable) stay for the next process to replay."""
    global _current
    with _lock:
        _current = None
        done = [s for s in _open if s.pending <= 0]
        for segment in _open:
            segment.sealed = True
        _open.difference_update(done)
    for segment in done:
        _delete(segment)


def _forget() -> None:
    global _current, _off, _directory, _lock, _warned_unencodable
    for segment in _open:
        with contextlib.suppress(OSError):
            os.close(segment.fd)  # never LOCK_UN: the lock is shared with the parent's descriptor
    _open.clear()
    _current = None
    _off = False
    _directory = None
    _warned_unencodable = False
    _lock = threading.Lock()


def _after_fork_in_child() -> None:
    """A forked child (Celery prefork, uvicorn/gunicorn workers) gets segments of its own: it
    closes the descriptors it inherited, which leaves the parent's locks in place."""
    _forget()


os.register_at_fork(after_in_child=_after_fork_in_child)


def spool_reset_for_tests() -> None:
    _forget()
