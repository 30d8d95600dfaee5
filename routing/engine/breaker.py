"""A circuit breaker per model, its state shared across processes through Django's cache.

closed    calls flow; failures (transient or model-permanent) are counted, and
          BREAKER_FAILURES of them within BREAKER_WINDOW_S open the circuit. A success
          clears the count.
open      the model is skipped until BREAKER_COOLDOWN_S has passed since it opened.
half_open after the cooldown one caller (cache.add decides which, across processes) sends a
          probe; success closes the circuit, failure opens it again for another cooldown.

Failures are counted without a read-modify-write: the window is cut into WINDOW_SLICES
slices, each a counter in the cache that a failure increments (`cache.incr`, atomic on
Redis and locmem; created by `cache.add`, expiring after the window). A failure then reads
the slices of the last window; the last of several simultaneous failures to read sees
every increment, so none is lost across processes. Slices leave the window whole, so a
failure counts for between 90 % and 100 % of BREAKER_WINDOW_S.

The hot path (a successful call on a closed circuit without failures) reads a short-lived
in-process copy of the state and the counts and writes nothing; refreshing that copy is one
cache round trip (get_many).

`breaker_scope(name)` gives the calls inside it a namespace of their own: a fault drill
opens circuits only for itself, never for live traffic.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

PREFIX = "orchestrator:breaker:"
INDEX_KEY = "orchestrator:breaker-index"
MEMO_TTL_S = 0.5
WINDOW_SLICES = 10

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def _conf(name: str, default: float) -> float:
    return float(settings.ORCHESTRATOR.get(name, default))


def _now() -> float:
    return time.time()


# key -> (when read, state, failures counted in the window then)
_memo: dict[str, tuple[float, dict[str, Any] | None, int]] = {}
_scope: ContextVar[str] = ContextVar("orchestrator_breaker_scope", default="")


@contextlib.contextmanager
def breaker_scope(name: str) -> Iterator[None]:
    """Inside the block (and the asyncio tasks it starts) breakers live in namespace `name`."""
    token = _scope.set(name)
    try:
        yield
    finally:
        _scope.reset(token)


def _key(model: str, scope: str | None = None) -> str:
    scope = _scope.get() if scope is None else scope
    return f"orchestrator:breaker@{scope}:{model}" if scope else PREFIX + model


def _index_key(scope: str | None = None) -> str:
    scope = _scope.get() if scope is None else scope
    return f"{INDEX_KEY}:{scope}" if scope else INDEX_KEY


def _slice_keys(key: str, now: float) -> list[str]:
    """The failure counters of the window ending now, the current slice last."""
    width = _conf("BREAKER_WINDOW_S", 60) / WINDOW_SLICES
    current = math.floor(now / width)
    return [f"{key}:failures:{n}" for n in range(current - WINDOW_SLICES + 1, current + 1)]


def _count(values: dict[str, Any], keys: list[str]) -> int:
    return sum(int(values.get(k) or 0) for k in keys)


def _incr(key: str, *, timeout: float | None) -> int:
    """Add one to a counter in the cache, atomically across processes; create it if missing."""
    try:
        return cache.incr(key)
    except ValueError:  # not there yet: the first to add it wins, every caller then adds one
        cache.add(key, 0, timeout=timeout)
        return cache.incr(key)


def _view(model: str) -> tuple[dict[str, Any] | None, int]:
    """(state, failures in the window), from the in-process copy while it is fresh."""
    now = time.monotonic()
    key = _key(model)
    hit = _memo.get(key)
    if hit is not None and now - hit[0] < MEMO_TTL_S:
        return hit[1], hit[2]
    slices = _slice_keys(key, _now())
    try:
        values = cache.get_many([key, *slices])
    except Exception:
        logger.warning("breaker state unreadable for %s; treating it as closed", model, exc_info=True)
        values = {}
    state, failures = values.get(key), _count(values, slices)
    _memo[key] = (now, state, failures)
    return state, failures


def _write(model: str, state: dict[str, Any]) -> None:
    _memo.pop(_key(model), None)
    try:
        cache.set(_key(model), state, timeout=None)
    except Exception:
        logger.warning("breaker state unwritable for %s", model, exc_info=True)


def _index_add(model: str) -> None:
    """List the model for breaker_states() once (cache.add picks who adds it, no lost updates)."""
    index = _index_key()
    if cache.add(f"{index}:has:{model}", 1, timeout=None):
        cache.set(f"{index}:{_incr(f'{index}:count', timeout=None)}", model, timeout=None)


def _index_names(scope: str | None = None) -> list[str]:
    index = _index_key(scope)
    count = int(cache.get(f"{index}:count") or 0)
    names = cache.get_many([f"{index}:{n}" for n in range(1, count + 1)])
    return list(dict.fromkeys(str(v) for v in names.values()))


def breaker_is_open(model: str) -> bool:
    """True when calls to `model` should be skipped right now (no probe slot for us)."""
    state, _ = _view(model)
    if not state or state.get("state") == CLOSED:
        return False
    cooldown = _conf("BREAKER_COOLDOWN_S", 30)
    if _now() - float(state.get("opened_at") or 0) < cooldown:
        return True
    # Cooldown over: exactly one caller (across processes) gets to probe.
    try:
        won = cache.add(_key(model) + ":probe", 1, timeout=max(1, int(cooldown)))
    except Exception:
        won = True
    if won:
        _write(model, {**state, "state": HALF_OPEN})
        return False
    return True


def breaker_would_skip(model: str) -> bool:
    """Like `breaker_is_open` but never claims the probe slot (for selection)."""
    state, _ = _view(model)
    if not state or state.get("state") == CLOSED:
        return False
    return _now() - float(state.get("opened_at") or 0) < _conf("BREAKER_COOLDOWN_S", 30)


def breaker_success(model: str) -> None:
    state, failures = _view(model)
    closed = state is None or state.get("state") == CLOSED
    if closed and not failures:
        return  # the hot path: nothing to write
    key = _key(model)
    _memo.pop(key, None)
    try:
        if not closed:
            cache.set(key, {"state": CLOSED, "opened_at": None}, timeout=None)
            cache.delete(key + ":probe")
        cache.delete_many(_slice_keys(key, _now()))
    except Exception:
        logger.warning("breaker state unwritable for %s", model, exc_info=True)


def breaker_failure(model: str) -> None:
    now = _now()
    key = _key(model)
    _memo.pop(key, None)
    slices = _slice_keys(key, now)
    marker = f"{_index_key()}:has:{model}"
    try:
        _incr(slices[-1], timeout=math.ceil(_conf("BREAKER_WINDOW_S", 60) * 1.1) + 1)
        # Read after our increment: whoever reads last sees every failure counted before it.
        values = cache.get_many([key, marker, *slices])
        if marker not in values:
            _index_add(model)
    except Exception:
        logger.warning("breaker failure for %s not counted", model, exc_info=True)
        return
    state = values.get(key) or {}
    if state.get("state") == HALF_OPEN:
        logger.warning("circuit for %s re-opened: its probe failed", model)
        _write(model, {"state": OPEN, "opened_at": now})
        with contextlib.suppress(Exception):
            cache.delete(key + ":probe")
        return
    if state.get("state") == OPEN:
        return
    failures = _count(values, slices)
    if failures >= int(_conf("BREAKER_FAILURES", 5)):
        window = _conf("BREAKER_WINDOW_S", 60)
        logger.warning("circuit for %s opened after %d failures in %ss", model, failures, window)
        _write(model, {"state": OPEN, "opened_at": now})


def breaker_states(*, scope: str = "") -> dict[str, dict[str, Any]]:
    """Every model's breaker state (sync; for dashboards): {name: {state, failures, opened_at}}.

    `failures` counts failures inside the window; `opened_at` is a Unix timestamp or None.
    Models that never failed are absent (read them as closed). `scope`: a drill's namespace."""
    now = _now()
    try:
        names = _index_names(scope)
        keys = {name: (_key(name, scope), _slice_keys(_key(name, scope), now)) for name in names}
        raw = cache.get_many([k for key, slices in keys.values() for k in (key, *slices)])
    except Exception:
        logger.warning("breaker states unreadable", exc_info=True)
        return {}
    cooldown = _conf("BREAKER_COOLDOWN_S", 30)
    out: dict[str, dict[str, Any]] = {}
    for name, (key, slices) in keys.items():
        state = raw.get(key) or {}
        failures = _count(raw, slices)
        if not state and not failures:
            continue
        kind = state.get("state", CLOSED)
        opened_at = state.get("opened_at")
        if kind == OPEN and opened_at is not None and now - opened_at >= cooldown:
            kind = HALF_OPEN  # the next call will probe
        out[name] = {"state": kind, "failures": failures, "opened_at": opened_at}
    return out


def breaker_reset(model: str | None = None, *, scope: str | None = None) -> None:
    """Close one circuit (or all, in the current or the given scope): for operators and tests."""
    token = _scope.set(scope) if scope is not None else None
    try:
        names = [model] if model else _index_names()
        now = _now()
        for name in names:
            key = _key(name)
            cache.delete_many([key, key + ":probe", *_slice_keys(key, now)])
        if model is None:
            index = _index_key()
            count = int(cache.get(f"{index}:count") or 0)
            cache.delete_many(
                [f"{index}:count"]
                + [f"{index}:{n}" for n in range(1, count + 1)]
                + [f"{index}:has:{name}" for name in names]
            )
        _memo.clear()
    finally:
        if token is not None:
            _scope.reset(token)
