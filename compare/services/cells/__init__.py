"""Running one cell (prompt × candidate): claim, call the engine once, check, record.

Idempotent by state:
- the claim is a conditional UPDATE (pending → running, or a running claim whose lease
  lapsed because its worker died → running again), so two deliveries never both call; a
  worker renews its claims every heartbeat (compare.leases), so a dead one's lapse in seconds;
- each queueing of a cell carries the cell's dispatch number; a message the cell was
  re-queued past (the sweep's) is a duplicate and does nothing;
- a cell waiting for a provider slot backs off (1 s doubling to 30 s, with jitter) and says
  when its message is due back, so the sweep re-queues only messages that were lost;
- the cell's trace id is fixed when the cell is made and every call joins it, so a
  redelivered task that finds a successful CallRecord in that trace reuses it instead of
  paying for the call again;
- the spend cap is a conditional UPDATE too: a cell reserves its estimated cost against
  the cap before calling and settles the real cost after.

The package: `run` (cell_run and the end states), `calls` (the engine calls, judges and
checks), `spend` (the spend cap's reservation and settlement), `timing` (time limits,
leases, back-off).
"""

from __future__ import annotations

from compare.services.cells.calls import SOURCE
from compare.services.cells.run import CellOutcome, cell_abandon, cell_fail, cell_run
from compare.services.cells.timing import (
    BUSY_BACKOFF_MAX_S,
    DEFER_GRACE_S,
    busy_backoff_s,
    claim_lapsed,
    lease_s,
    retry_backoff_s,
    time_limits,
)

__all__ = [
    "BUSY_BACKOFF_MAX_S",
    "DEFER_GRACE_S",
    "SOURCE",
    "CellOutcome",
    "busy_backoff_s",
    "cell_abandon",
    "cell_fail",
    "cell_run",
    "claim_lapsed",
    "lease_s",
    "retry_backoff_s",
    "time_limits",
]
