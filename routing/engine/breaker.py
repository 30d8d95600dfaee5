"""A circuit breaker per model, its state shared across processes through Django's cache.

closed    calls flow; failures (transient or model-permanent) inside BREAKER_WINDOW_S are
          counted, and BREAKER_FAILURES of them open the circuit.
open      the model is skipped until BREAKER_COOLDOWN_S has passed since it opened.
half_open after the cooldown one caller (cache.add decides which, across processes) sends a
          probe; success closes the circuit, failure opens it again for another cooldown.

The hot path (a successful call on a closed circuit) reads a short-lived in-process copy of
the state and writes nothing.

`breaker_scope(name)` gives the calls inside it a namespace of their own: a fault drill
opens circuits only for itself, never for live traffic. Read-modify-write of the failure list is not atomic across
processes; a lost update only delays opening by one failure.
"""

from __future__ import annotations

import contextlib
import logging
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

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


def _conf(name: str, default: float) -> float:
    return float(settings.ORCHESTRATOR.get(name, default))


def _now() -> float:
    return time.time()


_memo: dict[str, tuple[float, dict[str, Any] | None]] = {}
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


def _read(model: str) -> dict[str, Any] | None:
    try:
        return cache.get(_key(model))
    except Exception:
        logger.warning("breaker state unreadable for %s; treating it as closed", model, exc_info=True)
        return None


def _write(model: str, state: dict[str, Any] | None) -> None:
    _memo.pop(_key(model), None)
    try:
        if state is None:
            cache.delete(_key(model))
        else:
            cache.set(_key(model), state, timeout=None)
            index = set(cache.get(_index_key()) or ())
            if model not in index:
                index.add(model)
                cache.set(_index_key(), sorted(index), timeout=None)
    except Exception:
        logger.warning("breaker state unwritable for %s", model, exc_info=True)


def _state(model: str) -> dict[str, Any] | None:
    now = time.monotonic()
    key = _key(model)
    hit = _memo.get(key)
    if hit is not None and now - hit[0] < MEMO_TTL_S:
        return hit[1]
    state = _read(model)
    _memo[key] = (now, state)
    return state


def breaker_is_open(model: str) -> bool:
    """True when calls to `model` should be skipped right now (no probe slot for us)."""
    state = _state(model)
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
    state = _state(model)
    if not state or state.get("state") == CLOSED:
        return False
    return _now() - float(state.get("opened_at") or 0) < _conf("BREAKER_COOLDOWN_S", 30)


def breaker_success(model: str) -> None:
    state = _state(model)
    if state is None or (state.get("state") == CLOSED and not state.get("failures")):
        return
    _write(model, {"state": CLOSED, "failures": [], "opened_at": None})
    with contextlib.suppress(Exception):
        cache.delete(_key(model) + ":probe")


def breaker_failure(model: str) -> None:
    now = _now()
    state = _read(model) or {"state": CLOSED, "failures": [], "opened_at": None}
    if state.get("state") == HALF_OPEN:
        logger.warning("circuit for %s re-opened: its probe failed", model)
        _write(model, {"state": OPEN, "failures": [now], "opened_at": now})
        with contextlib.suppress(Exception):
            cache.delete(_key(model) + ":probe")
        return
    if state.get("state") == OPEN:
        return
    window = _conf("BREAKER_WINDOW_S", 60)
    failures = [t for t in state.get("failures", []) if now - t < window] + [now]
    if len(failures) >= int(_conf("BREAKER_FAILURES", 5)):
        logger.warning("circuit for %s opened after %d failures in %ss", model, len(failures), window)
        _write(model, {"state": OPEN, "failures": failures, "opened_at": now})
    else:
        _write(model, {"state": CLOSED, "failures": failures, "opened_at": None})


def breaker_states(*, scope: str = "") -> dict[str, dict[str, Any]]:
    """Every model's breaker state (sync; for dashboards): {name: {state, failures, opened_at}}.

    `failures` counts failures inside the window; `opened_at` is a Unix timestamp or None.
    Models that never failed are absent (read them as closed). `scope`: a drill's namespace."""
    try:
        names = cache.get(_index_key(scope)) or []
        raw = cache.get_many([_key(n, scope) for n in names])
    except Exception:
        logger.warning("breaker states unreadable", exc_info=True)
        return {}
    now = _now()
    window = _conf("BREAKER_WINDOW_S", 60)
    cooldown = _conf("BREAKER_COOLDOWN_S", 30)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        state = raw.get(_key(name, scope))
        if not state:
            continue
        kind = state.get("state", CLOSED)
        opened_at = state.get("opened_at")
        if kind == OPEN and opened_at is not None and now - opened_at >= cooldown:
            kind = HALF_OPEN  # the next call will probe
        out[name] = {
            "state": kind,
            "failures": len([t for t in state.get("failures", []) if now - t < window]),
            "opened_at": opened_at,
        }
    return out


def breaker_reset(model: str | None = None, *, scope: str | None = None) -> None:
    """Close one circuit (or all, in the current or the given scope): for operators and tests."""
    token = _scope.set(scope) if scope is not None else None
    try:
        names = [model] if model else list(cache.get(_index_key()) or [])
        for name in names:
            _write(name, None)
            cache.delete(_key(name) + ":probe")
        if model is None:
            cache.delete(_index_key())
        _memo.clear()
    finally:
        if token is not None:
            _scope.reset(token)
