"""Forgetting the engine's state between test cases."""

from __future__ import annotations

from metrics import services as recorder
from routing.cache_guard import cache_guard_reset
from routing.engine.breaker import breaker_reset
from routing.engine.config import config_invalidate
from routing.engine.stats import stats_invalidate


def engine_reset() -> None:
    """Forget every piece of in-process and cached engine state: config snapshot, breaker
    states, measured figures and unwritten records. For tests (between test cases)."""
    cache_guard_reset()
    config_invalidate()
    breaker_reset()
    stats_invalidate()
    recorder._reset_for_tests()
