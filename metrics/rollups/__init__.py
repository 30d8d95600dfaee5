"""Rollups: CallRecords folded into per-bucket aggregates that dashboards read.

`rollup_run()` is the one writer. Each run:
1. claims the RollupState row with a conditional UPDATE (a lease), so two workers never
   rebuild the same bucket at once; the lease is renewed after every hour it rebuilds;
2. finds the hours to rebuild: those holding records with an id above the watermark
   (including backdated ones), plus every hour from a few minutes before the last run's
   cut-off up to now (catches rows whose transaction committed late);
3. rebuilds each hour whole from raw rows created before the cut-off: minute rows (kept
   for MINUTE_RETENTION) and the hour row, replacing what was there, so re-running never
   double-counts; then rebuilds the touched days from their hour rows;
4. moves the watermark and `covered_until` (the cut-off): rollups hold exactly the
   records with an id up to the watermark created before the cut-off; dashboards read the
   rest (a newer id or a later created_at) from raw rows.
"""

from metrics.rollups.aggregates import DIMENSIONS, RAW_FIELDS, Agg, Key, aggregate_raw, by_model, raw_key
from metrics.rollups.buckets import (
    HOUR,
    floor_day,
    floor_hour,
    floor_minute,
    floor_to,
    local_zone,
    next_day,
    step_after,
)
from metrics.rollups.run import (
    LATE_COMMIT_SLACK,
    LEASE,
    MINUTE_RETENTION,
    RollupResult,
    rollup_reset,
    rollup_run,
    rollup_state,
)

__all__ = [
    "DIMENSIONS",
    "HOUR",
    "LATE_COMMIT_SLACK",
    "LEASE",
    "MINUTE_RETENTION",
    "RAW_FIELDS",
    "Agg",
    "Key",
    "RollupResult",
    "aggregate_raw",
    "by_model",
    "floor_day",
    "floor_hour",
    "floor_minute",
    "floor_to",
    "local_zone",
    "next_day",
    "raw_key",
    "rollup_reset",
    "rollup_run",
    "rollup_state",
    "step_after",
]
