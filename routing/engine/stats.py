"""Measured figures selection uses, computed periodically and cached in-process (never per call).

- latency: the recent p50 of ok calls per model, for models with at least
  ORCHESTRATOR["LATENCY_MIN_CALLS"] of them in the last LATENCY_WINDOW_S seconds;
- quality: scores from ORCHESTRATOR["QUALITY_SOURCE"] (arena votes), per capability set.

Both refresh at most every STATS_REFRESH_S seconds. A failing source is logged and the
engine falls back to the operator's priors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django.utils.module_loading import import_string

from metrics.selectors.latency import calls_latency_p50

logger = logging.getLogger(__name__)

SAMPLE = 500  # most recent ok calls per model considered


class _Cache:
    latency: dict[str, float] = {}
    latency_at: float = float("-inf")
    latency_models: frozenset[str] = frozenset()
    refreshing: bool = False
    quality: dict[tuple[str, ...], tuple[float, dict[str, float]]] = {}
    lock = threading.Lock()


def _refresh_s() -> float:
    return float(settings.ORCHESTRATOR.get("STATS_REFRESH_S", 30))


def latency_p50_compute(model_names: Iterable[str]) -> dict[str, float]:
    """Sync ORM: measured p50 latency (ms) per model that has enough recent ok calls."""
    min_calls = int(settings.ORCHESTRATOR.get("LATENCY_MIN_CALLS", 20))
    since = timezone.now() - timedelta(seconds=int(settings.ORCHESTRATOR.get("LATENCY_WINDOW_S", 3600)))
    return calls_latency_p50(model_names=model_names, since=since, min_calls=min_calls, sample=SAMPLE)


def _latency_stale(model_names: frozenset[str]) -> bool:
    return time.monotonic() - _Cache.latency_at > _refresh_s() or not model_names <= _Cache.latency_models


def _latency_refresh(model_names: frozenset[str]) -> dict[str, float]:
    with _Cache.lock:
        if _latency_stale(model_names):
            try:
                _Cache.latency = latency_p50_compute(model_names)
            except Exception:
                logger.exception("measuring latency failed; using the configured priors")
                _Cache.latency = {}
            _Cache.latency_models = model_names
            _Cache.latency_at = time.monotonic()
        return _Cache.latency


def _latency_refresh_in_background(model_names: frozenset[str]) -> None:
    def run() -> None:
        try:
            _latency_refresh(model_names)
        finally:
            _Cache.refreshing = False
            close_old_connections()

    _Cache.refreshing = True
    threading.Thread(target=run, name="latency-stats", daemon=True).start()


async def latency_p50s(model_names: frozenset[str]) -> dict[str, float]:
    """Measured p50s. When figures exist but are stale, they are used while a background
    thread recomputes them, so no request waits; only the very first computation is awaited
    (and in inline-records mode, i.e. tests, every one is, for determinism)."""
    if not _latency_stale(model_names):
        return _Cache.latency
    background = float(settings.ORCHESTRATOR.get("RECORD_FLUSH_INTERVAL_S", 0.5)) > 0
    if background and _Cache.latency_at != float("-inf") and model_names <= _Cache.latency_models:
        if not _Cache.refreshing:
            _latency_refresh_in_background(model_names)
        return _Cache.latency
    return await sync_to_async(_latency_refresh, thread_sensitive=True)(model_names)


def latency_p50s_sync(model_names: frozenset[str]) -> dict[str, float]:
    if not _latency_stale(model_names):
        return _Cache.latency
    return _latency_refresh(model_names)


def _quality_source() -> Callable[..., dict[str, float]] | None:
    path = settings.ORCHESTRATOR.get("QUALITY_SOURCE") or ""
    if not path:
        return None
    try:
        return import_string(path)
    except ImportError:
        return None  # not built yet, or removed: the operator's rank is used


def _quality_refresh(key: tuple[str, ...]) -> dict[str, float]:
    hit = _Cache.quality.get(key)
    if hit is not None and time.monotonic() - hit[0] <= _refresh_s():
        return hit[1]
    source = _quality_source()
    scores: dict[str, float] = {}
    if source is not None:
        try:
            scores = {str(k): float(v) for k, v in (source(capabilities=list(key)) or {}).items()}
        except Exception:
            logger.exception("quality source failed; using the operator's quality rank")
    _Cache.quality[key] = (time.monotonic(), scores)
    return scores


async def quality_scores(capabilities: Iterable[str]) -> dict[str, float]:
    key = tuple(sorted(capabilities))
    hit = _Cache.quality.get(key)
    if hit is not None and time.monotonic() - hit[0] <= _refresh_s():
        return hit[1]
    return await sync_to_async(_quality_refresh, thread_sensitive=True)(key)


def quality_scores_sync(capabilities: Iterable[str]) -> dict[str, float]:
    return _quality_refresh(tuple(sorted(capabilities)))


def stats_invalidate() -> None:
    """Forget measured figures (tests; after importing history)."""
    _Cache.latency = {}
    _Cache.latency_at = float("-inf")
    _Cache.latency_models = frozenset()
    _Cache.quality = {}
