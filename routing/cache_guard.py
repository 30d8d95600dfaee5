"""How the request path treats the shared cache (Redis) when it is down or stalled.

Every Redis client on the request path has a short socket timeout (`REDIS_TIMEOUT_MS`,
settings). A timeout or a connection error is reported here with `cache_failed`; for the
next `REDIS_RETRY_S` seconds `cache_usable()` is False and callers do not touch Redis at all:
they fall back to what they have (a stale in-process copy, or admitting unchecked where that
is the documented rule). So a stalled Redis costs each process one timeout per retry period,
never a request per stalled command.

The outage is logged once when it starts (with its traceback), then once a minute while it
lasts, and once when Redis answers again, however many calls hit it in between.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings

logger = logging.getLogger("orchestrator.cache")

LOG_EVERY_S = 60.0


class _Health:
    down_since: float | None = None  # monotonic time of the first failure of this outage
    retry_at: float = 0.0
    failures: int = 0
    logged_at: float = 0.0
    lock = threading.Lock()


def redis_timeout_s() -> float:
    """The socket timeout of every Redis command on the request path, in seconds."""
    return float(settings.ORCHESTRATOR.get("REDIS_TIMEOUT_MS", 250)) / 1000


def _retry_s() -> float:
    return float(settings.ORCHESTRATOR.get("REDIS_RETRY_S", 1.0))


def cache_usable() -> bool:
    """False while Redis is in the back-off after a failure: skip it and degrade."""
    return _Health.down_since is None or time.monotonic() >= _Health.retry_at


def cache_failed(*, what: str, exc: BaseException | None = None) -> None:
    """Report a failed (timed-out, refused) cache operation; logs the outage, not each failure."""
    now = time.monotonic()
    with _Health.lock:
        _Health.failures += 1
        _Health.retry_at = now + _retry_s()
        if _Health.down_since is None:
            _Health.down_since = now
            _Health.logged_at = now
            logger.warning(
                "shared cache (Redis) unavailable (%s): degrading; retrying every %gs",
                what,
                _retry_s(),
                exc_info=exc,
            )
        elif now - _Health.logged_at >= LOG_EVERY_S:
            _Health.logged_at = now
            logger.warning(
                "shared cache (Redis) still unavailable after %.0f s (%d failed operations; last: %s)",
                now - _Health.down_since,
                _Health.failures,
                what,
            )


def cache_recovered() -> None:
    """Report a cache operation that worked (cheap when nothing was wrong)."""
    if _Health.down_since is None:
        return
    with _Health.lock:
        if _Health.down_since is None:
            return
        logger.warning(
            "shared cache (Redis) available again after %.1f s (%d failed operations)",
            time.monotonic() - _Health.down_since,
            _Health.failures,
        )
        _Health.down_since = None
        _Health.failures = 0
        _Health.retry_at = 0.0


def cache_guard_reset() -> None:
    """Forget any outage (tests)."""
    with _Health.lock:
        _Health.down_since = None
        _Health.failures = 0
        _Health.retry_at = 0.0
