"""Dashboard figures: rollup rows for the window plus the live tail from raw rows (`reads`),
folded into the page's data in one pass (`figures`)."""

from metrics.selectors.dashboard.figures import (
    BREAKDOWN_DIMS,
    FINE_FILTERS,
    dashboard_figures,
    unpriced_names,
)
from metrics.selectors.dashboard.reads import TAIL_MAX, bucket_starts, segments
from metrics.selectors.dashboard.types import ERROR_STATUSES, Bucket, DashboardData, Totals

__all__ = [
    "BREAKDOWN_DIMS",
    "ERROR_STATUSES",
    "FINE_FILTERS",
    "TAIL_MAX",
    "Bucket",
    "DashboardData",
    "Totals",
    "bucket_starts",
    "dashboard_figures",
    "segments",
    "unpriced_names",
]
