"""Settings for the test suite: plain http, fast hashing, everything else as in production."""

import os

os.environ.setdefault("HTTPS", "false")
os.environ["ORCHESTRATOR_TESTING"] = "true"

from .settings import *  # noqa: E402,F403

# Several test runs may share this machine at once: give each its own database and cache keys.
_run = os.getpid()
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"]["NAME"] = str(VAR_DIR / f"test-{_run}.sqlite3")  # noqa: F405
else:
    DATABASES["default"].setdefault("TEST", {})["NAME"] = f"test_orchestrator_{_run}"  # noqa: F405
CACHES["default"]["KEY_PREFIX"] = f"test{_run}"  # noqa: F405
# Records are written inline in tests (RECORD_FLUSH_INTERVAL_S = 0), so there is nothing to
# spool; the spool's own tests turn it on in a temporary VAR_DIR.
ORCHESTRATOR["RECORD_SPOOL"] = False  # noqa: F405
