"""Fault drills: N requests through a chain or route with chosen models made to fail at the
provider-client layer (routing.engine.faults), and a report of what the engine did.

The package: `inputs` (faults, targets, limits; create and queue), `run` (claim, send, save),
`report` (what the engine did).
"""

from __future__ import annotations

from compare.services.drills.inputs import (
    DEFAULT_PROMPT,
    FAULT_KINDS,
    MAX_CONCURRENCY,
    MAX_REQUESTS,
    DrillInputError,
    FaultInput,
    drill_create,
    drill_launch,
    drill_target_models,
    fault_parse,
    faults_validate,
)
from compare.services.drills.report import baseline_report, drill_report
from compare.services.drills.run import DRILL_LEASE, drill_fail, drill_run

__all__ = [
    "DEFAULT_PROMPT",
    "DRILL_LEASE",
    "FAULT_KINDS",
    "MAX_CONCURRENCY",
    "MAX_REQUESTS",
    "DrillInputError",
    "FaultInput",
    "baseline_report",
    "drill_create",
    "drill_fail",
    "drill_launch",
    "drill_report",
    "drill_run",
    "drill_target_models",
    "fault_parse",
    "faults_validate",
]
