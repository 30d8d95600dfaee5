"""A circuit breaker per model, its state shared across processes through Django's cache.

closed    calls flow; failures (transient or model-permanent) are counted, and
          BREAKER_FAILURES of them within BREAKER_WINDOW_S open the circuit. A success
          clears the count.
open      the model is skipped until BREAKER_COOLDOWN_S has passed since it opened.
half_open after the cooldown one caller (cache.add decides which, across processes) sends a
          probe; success closes the circuit, failure opens it again for another cooldown.

Only attempts that started after the circuit opened can change an open or half-open circuit:
callers pass the attempt's start (`breaker_attempt_start()`, before the call) as `started_at`.
Slow calls that were already in flight when it opened finish without closing it (their
successes) or re-opening it (their failures), so the cooldown is honoured. Opening is decided
by one `cache.add` per opening, so "circuit … opened" is logged once however many processes
saw the last failures.

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
opens circuits only for itself, never for live traffic (its log lines name the scope, and
`breaker_states(scope=…)` reads them).

When the shared cache is down or stalled (see `cache_guard`), the breaker reads its last
in-process copy (or closed) and counts nothing, without waiting on Redis.
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

from routing.cache_guard import cache_failed, cache_recovered, cache_usable
from routing.shared_cache import shared_cache

logger = logging.getLogger(__name__)

PREFIX = "orchestrator:breaker:"
INDEX_KEY = "orchestrator:breaker-index"
SCOPES_KEY = "orchestrator:breaker-scopes"
SCOPE_TTL_S = 7 * 24 * 3600
MEMO_TTL_S = 0.5
WINDOW_SLICES = 10

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def _conf(name: str, default: float) -> float:
    return float(settings.ORCHESTRATOR.get(name, default))


def _now() -> float:
    return time.time()


def breaker_attempt_start() -> float:
    """The breaker's clock now: what an attempt passes back as `started_at` when it ends."""
    return _now()


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


def _label(model: str) -> str:
    scope = _scope.get()
    return f"{model} ({scope})" if scope else model


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
    """Add one to a counter in the cache, atomically across processes; create it if missing.

    The counter can vanish between our `add` and `incr` (a success deletes the counts, a
    reset, expiry): then it is created again holding our one, so no increment is lost."""
    for _ in range(3):
        try:
            return shared_cache().incr(key)
        except ValueError:  # not there: whoever adds it holds the first increment
            if shared_cache().add(key, 1, timeout=timeout):
                return 1
    return shared_cache().incr(key)


def _view(model: str) -> tuple[dict[str, Any] | None, int]:
    """(state, failures in the window), from the in-process copy while it is fresh."""
    now = time.monotonic()
    key = _key(model)
    hit = _memo.get(key)
    if hit is not None and now - hit[0] < MEMO_TTL_S:
        return hit[1], hit[2]
    if not cache_usable():  # Redis down: the last copy we read (or closed), without waiting
        return (hit[1], hit[2]) if hit is not None else (None, 0)
    slices = _slice_keys(key, _now())
    try:
        values = shared_cache().get_many([key, *slices])
    except Exception as exc:
        cache_failed(what=f"breaker state of {model}", exc=exc)
        return (hit[1], hit[2]) if hit is not None else (None, 0)
    cache_recovered()
    state, failures = values.get(key), _count(values, slices)
    _memo[key] = (now, state, failures)
    return state, failures


def _write(model: str, state: dict[str, Any]) -> None:
    _memo.pop(_key(model), None)
    try:
        shared_cache().set(_key(model), state, timeout=None)
    except Exception as exc:
        cache_failed(what=f"breaker state of {model}", exc=exc)


def _started_before(state: dict[str, Any], started_at: float | None, field: str = "opened_at") -> bool:
    """True when the attempt began before the state's `field` moment (it was in flight)."""
    since = state.get(field)
    if since is None:
        since = state.get("opened_at")
    return started_at is not None and since is not None and started_at < float(since)


def _index_add(model: str) -> None:
    """List the model for breaker_states() once (cache.add picks who adds it, no lost updates)."""
    index = _index_key()
    if shared_cache().add(f"{index}:has:{model}", 1, timeout=None):
        shared_cache().set(f"{index}:{_incr(f'{index}:count', timeout=None)}", model, timeout=None)
    scope = _scope.get()
    if scope and shared_cache().add(f"{SCOPES_KEY}:has:{scope}", 1, timeout=SCOPE_TTL_S):
        shared_cache().set(
            f"{SCOPES_KEY}:{_incr(f'{SCOPES_KEY}:count', timeout=None)}", scope, timeout=SCOPE_TTL_S
        )


def breaker_scopes() -> list[str]:
    """The scopes (drills) whose breakers counted a failure in the last SCOPE_TTL_S, oldest first."""
    if not cache_usable():
        return []
    try:
        count = int(shared_cache().get(f"{SCOPES_KEY}:count") or 0)
        names = shared_cache().get_many([f"{SCOPES_KEY}:{n}" for n in range(1, count + 1)])
    except Exception as exc:
        cache_failed(what="breaker scopes", exc=exc)
        return []
    return list(dict.fromkeys(str(names[k]) for k in sorted(names, key=lambda k: int(k.rsplit(":", 1)[1]))))


def _index_names(scope: str | None = None) -> list[str]:
    index = _index_key(scope)
    count = int(shared_cache().get(f"{index}:count") or 0)
    names = shared_cache().get_many([f"{index}:{n}" for n in range(1, count + 1)])
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
    if not cache_usable():
        return False  # cannot agree on one prober: let calls through (fail open)
    try:
        won = shared_cache().add(_key(model) + ":probe", 1, timeout=max(1, int(cooldown)))
    except Exception as exc:
        cache_failed(what=f"breaker probe of {model}", exc=exc)
        won = True
    if won:
        _write(model, {**state, "state": HALF_OPEN, "probe_at": _now()})
        return False
    return True


def breaker_would_skip(model: str) -> bool:
    """Like `breaker_is_open` but never claims the probe slot (for selection)."""
    state, _ = _view(model)
    if not state or state.get("state") == CLOSED:
        return False
    return _now() - float(state.get("opened_at") or 0) < _conf("BREAKER_COOLDOWN_S", 30)


def breaker_success(model: str, *, started_at: float | None = None) -> None:
    """A call to `model` succeeded. `started_at`: when the attempt began
    (`breaker_attempt_start()`); a success that began before the circuit opened leaves an
    open or half-open circuit as it is. Without it the success counts as begun just now."""
    state, failures = _view(model)
    closed = state is None or state.get("state") == CLOSED
    if closed and not failures:
        return  # the hot path: nothing to write
    if not closed and _started_before(state or {}, started_at):
        return  # in flight when the circuit opened: says nothing about the model now
    if not cache_usable():
        return
    key = _key(model)
    _memo.pop(key, None)
    try:
        if not closed:
            shared_cache().set(key, {"state": CLOSED, "opened_at": None}, timeout=None)
            shared_cache().delete_many([key + ":probe", key + ":opened"])
            logger.info("circuit for %s closed: a call succeeded after the cooldown", _label(model))
        shared_cache().delete_many(_slice_keys(key, _now()))
    except Exception as exc:
        cache_failed(what=f"breaker state of {model}", exc=exc)


def breaker_failure(model: str, *, started_at: float | None = None) -> None:
    """A call to `model` failed (transient or model-permanent). `started_at` as for
    `breaker_success`: a failure in flight since before the half-open probe began does not
    re-open the circuit (only the probe's own outcome decides)."""
    if not cache_usable():
        return  # Redis down: nothing is counted (and nothing waits on it)
    now = _now()
    key = _key(model)
    _memo.pop(key, None)
    slices = _slice_keys(key, now)
    marker = f"{_index_key()}:has:{model}"
    try:
        _incr(slices[-1], timeout=math.ceil(_conf("BREAKER_WINDOW_S", 60) * 1.1) + 1)
        # Read after our increment: whoever reads last sees every failure counted before it.
        values = shared_cache().get_many([key, marker, *slices])
        if marker not in values:
            _index_add(model)
    except Exception as exc:
        cache_failed(what=f"breaker failure of {model} (not counted)", exc=exc)
        return
    state = values.get(key) or {}
    if state.get("state") == HALF_OPEN:
        if _started_before(state, started_at, "probe_at"):
            return  # an older call's failure, not the probe's
        _write(model, {"state": OPEN, "opened_at": now})
        with contextlib.suppress(Exception):
            shared_cache().delete(key + ":probe")
        logger.warning("circuit for %s re-opened: its probe failed", _label(model))
        return
    if state.get("state") == OPEN:
        return
    failures = _count(values, slices)
    if failures >= int(_conf("BREAKER_FAILURES", 5)):
        # One opening per closed spell, whoever saw the threshold first (across processes).
        try:
            won = shared_cache().add(
                key + ":opened", now, timeout=max(1, int(_conf("BREAKER_COOLDOWN_S", 30)))
            )
        except Exception as exc:
            cache_failed(what=f"breaker state of {model}", exc=exc)
            return
        if not won:
            return
        _write(model, {"state": OPEN, "opened_at": now})
        window = _conf("BREAKER_WINDOW_S", 60)
        logger.warning("circuit for %s opened after %d failures in %ss", _label(model), failures, window)


def breaker_states(*, scope: str = "") -> dict[str, dict[str, Any]]:
    """Every model's breaker state (sync; for dashboards): {name: {state, failures, opened_at}}.

    `failures` counts failures inside the window; `opened_at` is a Unix timestamp or None.
    Models that never failed are absent (read them as closed). `scope`: a drill's namespace
    (`breaker_scopes()` lists them); "" is live traffic, the only scope that routes calls.
    Reads nothing (returns {}) while the shared cache is down."""
    now = _now()
    if not cache_usable():
        return {}
    try:
        names = _index_names(scope)
        keys = {name: (_key(name, scope), _slice_keys(_key(name, scope), now)) for name in names}
        raw = shared_cache().get_many([k for key, slices in keys.values() for k in (key, *slices)])
    except Exception as exc:
        cache_failed(what="breaker states", exc=exc)
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
            shared_cache().delete_many([key, key + ":probe", key + ":opened", *_slice_keys(key, now)])
        if model is None:
            index = _index_key()
            count = int(shared_cache().get(f"{index}:count") or 0)
            shared_cache().delete_many(
                [f"{index}:count"]
                + [f"{index}:{n}" for n in range(1, count + 1)]
                + [f"{index}:has:{name}" for name in names]
            )
        _memo.clear()
    finally:
        if token is not None:
            _scope.reset(token)
