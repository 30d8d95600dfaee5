"""Settings for the test suite: plain http, fast hashing, everything else as in production."""

import os

os.environ.setdefault("HTTPS", "false")
os.environ["ORCHESTRATOR_TESTING"] = "true"

from .settings import *  # noqa: E402,F403
