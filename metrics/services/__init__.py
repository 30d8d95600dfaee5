"""Writes of the metrics app. The recorder (`recorder/`) is the one service that writes
CallRecords; `inserts.py` holds the SQL it writes them with, `spool/` the on-disk copy of
the records not written yet (replayed after a crash). The app's write API is the recorder's,
listed once in `metrics.services.recorder.__all__`."""

from metrics.services import recorder
from metrics.services.recorder import *  # noqa: F403

__all__ = recorder.__all__
