"""Reads for compare pages and exports: progress, the results matrix, totals, drills."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from compare.assertions import check_result
from compare.models import (
    CellStatus,
    CheckResult,
    CompareCandidate,
    CompareCell,
    ComparePrompt,
    CompareRun,
    Drill,
)
from routing.models import EMBEDDING, FallbackChain, ModelConfig, PromptVersion, TaskRoute


def runs_recent(*, limit: int = 50) -> QuerySet[CompareRun]:
    return (
        CompareRun.objects.select_related("created_by")
        .annotate(cell_count=Count("cells", distinct=True), prompt_count=Count("prompts", distinct=True))
        .order_by("-created_at", "-id")[:limit]
    )


def run_progress(*, run: CompareRun) -> dict[str, Any]:
    as_of = timezone.now()
    counts = dict.fromkeys(CellStatus.values, 0)
    for row in CompareCell.objects.filter(run=run).values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    total = sum(counts.values())
    finished = total - counts[CellStatus.PENDING] - counts[CellStatus.RUNNING]
    return {
        "total": total,
        "finished": finished,
        "counts": counts,
        "percent": round(100 * finished / total) if total else 100,
        # The page asks for the cells changed since this moment on its next poll.
        "as_of": as_of.isoformat(),
    }


# A cell's timestamps are taken before its row commits: look back a little further than the
# last poll so none is missed (a cell sent twice is harmless).
CHANGED_OVERLAP = timedelta(seconds=5)
CHANGED_LIMIT = 200


def run_cells_changed(*, run: CompareRun, since: datetime) -> list[CompareCell]:
    """The cells of `run` that a worker claimed or finished since `since` (at most
    CHANGED_LIMIT: the page reloads the whole matrix when the run ends), so a running run's
    page fills them in as they finish. Two queries."""
    window = since - CHANGED_OVERLAP
    cells = list(
        CompareCell.objects.filter(run=run)
        .filter(Q(finished_at__gte=window) | Q(claimed_at__gte=window))
        .order_by("pk")[:CHANGED_LIMIT]
    )
    by_candidate = {c.pk: c for c in CompareCandidate.objects.filter(run=run)}
    for cell in cells:
        cell.candidate = by_candidate[cell.candidate_id]
    return cells


@dataclass(frozen=True)
class DrillProgress:
    done: int
    total: int
    errors: int
    phase: str  # "baseline" (the fault-free pass) or "drill"
    seconds_left: float | None  # None until a first request has finished

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


def drill_progress(*, drill: Drill, now: datetime | None = None) -> DrillProgress | None:
    """How far a running drill is: requests done of all it will send (both passes when it
    has a baseline), errors so far, and the time left at the pace so far. None before the
    worker has reported anything."""
    data = (drill.report or {}).get("progress")
    if not isinstance(data, dict) or drill.started_at is None:
        return None
    done, total = int(data.get("done", 0)), int(data.get("total", 0))
    elapsed = ((now or timezone.now()) - drill.started_at).total_seconds()
    left = elapsed / done * (total - done) if done and total >= done else None
    return DrillProgress(
        done=done,
        total=total,
        errors=int(data.get("errors", 0)),
        phase=str(data.get("phase", "drill")),
        seconds_left=left,
    )


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _normalized(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass
class MatrixRow:
    prompt: ComparePrompt
    cells: list[CompareCell | None]
    differs: bool


@dataclass
class Matrix:
    candidates: list[CompareCandidate]
    rows: list[MatrixRow]
    totals: list[dict[str, Any]] = field(default_factory=list)
    hidden_rows: int = 0


def run_matrix(*, run: CompareRun, only_differ: bool = False) -> Matrix:
    """Rows are prompts, columns candidates; three queries whatever the size."""
    candidates = list(CompareCandidate.objects.filter(run=run).order_by("position"))
    prompts = list(ComparePrompt.objects.filter(run=run).order_by("position"))
    by_candidate = {c.pk: c for c in candidates}
    by_key = {}
    for cell in CompareCell.objects.filter(run=run):
        cell.candidate = by_candidate[cell.candidate_id]  # no query per cell in templates
        by_key[(cell.prompt_id, cell.candidate_id)] = cell
    rows = []
    for prompt in prompts:
        cells = [by_key.get((prompt.pk, cand.pk)) for cand in candidates]
        outputs = {_normalized(c.output) for c in cells if c is not None and c.status == CellStatus.DONE}
        statuses = {c.status for c in cells if c is not None}
        differs = len(outputs) > 1 or (CellStatus.DONE in statuses and len(statuses) > 1)
        rows.append(MatrixRow(prompt=prompt, cells=cells, differs=differs))
    matrix = Matrix(candidates=candidates, rows=rows)
    for index, _cand in enumerate(candidates):
        column = [r.cells[index] for r in rows if r.cells[index] is not None]
        done = [c for c in column if c is not None and c.status == CellStatus.DONE]
        latencies = [c.latency_ms for c in done if c.latency_ms is not None]
        judged = [c for c in done if c.passed is not None]  # n/a cells count neither way
        costs = [c.cost_usd for c in column if c is not None and c.cost_usd is not None]
        matrix.totals.append(
            {
                "cost_usd": sum(costs, Decimal("0")),
                "latency_mean_ms": statistics.fmean(latencies) if latencies else None,
                "latency_p95_ms": _p95(latencies),
                "pass_rate": (sum(1 for c in judged if c.passed) / len(judged)) if judged else None,
                "passed": sum(1 for c in judged if c.passed),
                "judged": len(judged),
                "not_applicable": sum(1 for c in done if c.verdict == CheckResult.NOT_APPLICABLE),
                "done": len(done),
                "failed": sum(1 for c in column if c is not None and c.status == CellStatus.FAILED),
                "tokens": sum((c.input_tokens or 0) + (c.output_tokens or 0) for c in done),
            }
        )
    if only_differ:
        matrix.rows = [r for r in rows if r.differs]
        matrix.hidden_rows = len(rows) - len(matrix.rows)
    return matrix


def _cell_dict(cell: CompareCell | None) -> dict[str, Any] | None:
    if cell is None:
        return None
    return {
        "cell_id": cell.pk,
        "status": cell.status,
        "model": cell.model_name,
        "output": cell.output,
        "latency_ms": cell.latency_ms,
        "input_tokens": cell.input_tokens,
        "output_tokens": cell.output_tokens,
        "cost_usd": str(cell.cost_usd) if cell.cost_usd is not None else None,
        "passed": cell.passed,
        "verdict": cell.verdict,
        "checks": [{**c, "result": check_result(c)} for c in cell.checks],
        "error": cell.error,
        "trace_id": cell.trace_id,
        "call_record_id": cell.call_record_id,
        "worker": cell.worker,
        "claims": cell.claims,
    }


def run_export_rows(*, run: CompareRun) -> list[dict[str, Any]]:
    """One flat row per cell (CSV)."""
    matrix = run_matrix(run=run)
    out = []
    for row in matrix.rows:
        for cand, cell in zip(matrix.candidates, row.cells, strict=True):
            data = _cell_dict(cell) or {}
            out.append(
                {
                    "prompt": row.prompt.position + 1,
                    "input": row.prompt.input,
                    "expected": row.prompt.expected,
                    "task_type": row.prompt.task_type,
                    "candidate": cand.label,
                    **{k: data.get(k) for k in EXPORT_CELL_FIELDS},
                }
            )
            if out[-1]["latency_ms"] is not None:  # measured to the microsecond; shown to 0.1 ms
                out[-1]["latency_ms"] = round(float(out[-1]["latency_ms"]), 1)
    return out


EXPORT_CELL_FIELDS = (
    "status",
    "model",
    "output",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "passed",
    "verdict",
    "error",
    "trace_id",
    "call_record_id",
)


def run_export_document(*, run: CompareRun) -> dict[str, Any]:
    """The whole run as one JSON document."""
    matrix = run_matrix(run=run)
    return {
        "run": {
            "id": run.pk,
            "name": run.name,
            "status": run.status,
            "created_at": run.created_at.isoformat(),
            "assertions": run.assertions,
            "estimated_cost_usd": str(run.estimated_cost_usd) if run.estimated_cost_usd is not None else None,
            "spend_cap_usd": str(run.spend_cap_usd) if run.spend_cap_usd is not None else None,
            "spent_usd": str(run.spent_usd),
        },
        "candidates": [
            {
                "label": cand.label,
                "kind": cand.kind,
                "target": cand.target,
                "totals": {
                    k: (str(v) if isinstance(v, Decimal) else v) for k, v in matrix.totals[index].items()
                },
            }
            for index, cand in enumerate(matrix.candidates)
        ],
        "rows": [
            {
                "prompt": row.prompt.position + 1,
                "input": row.prompt.input,
                "expected": row.prompt.expected,
                "task_type": row.prompt.task_type,
                "cells": {
                    cand.label: _cell_dict(cell)
                    for cand, cell in zip(matrix.candidates, row.cells, strict=True)
                },
            }
            for row in matrix.rows
        ],
    }


def candidate_choices() -> dict[str, list[dict[str, Any]]]:
    """What the new-run form offers: models (with key status), routes, prompt versions."""
    models = [
        {
            "value": f"model:{m.name}",
            "label": m.name,
            "status": m.provider.key_status if m.enabled and m.provider.enabled else "disabled",
            "usable": m.enabled and m.provider.enabled and not m.provider.needs_key,
        }
        # Compare runs chat: embedding models are not candidates.
        for m in ModelConfig.objects.select_related("provider")
        .exclude(capabilities__slug=EMBEDDING)
        .order_by("name")
    ]
    routes = [
        {"value": f"route:{r.task_type}", "label": r.task_type, "usable": r.enabled}
        for r in TaskRoute.objects.order_by("task_type")
    ]
    prompts = [
        {
            "value": f"prompt:{p.pk}",
            "label": f"{p.route.task_type} v{p.version}" + (f" ({p.model.name})" if p.model else ""),
            "usable": True,
        }
        for p in PromptVersion.objects.select_related("route", "model").order_by(
            "route__task_type", "model__name", "-version"
        )
    ]
    return {"models": models, "routes": routes, "prompts": prompts}


def drill_breaker_scope(*, drill_id: int, faulted: bool = True) -> str:
    """A drill's own circuit-breaker namespace: its failures never open a circuit for live
    traffic, and live state never skews the drill (each run starts all closed)."""
    return f"drill-{drill_id}" if faulted else f"drill-{drill_id}-baseline"


def drills_recent(*, limit: int = 50) -> QuerySet[Drill]:
    return Drill.objects.select_related("created_by").order_by("-created_at", "-id")[:limit]


def drill_target_choices() -> dict[str, list[str]]:
    return {
        "chains": list(FallbackChain.objects.order_by("name").values_list("name", flat=True)),
        "routes": list(TaskRoute.objects.order_by("task_type").values_list("task_type", flat=True)),
        "models": list(ModelConfig.objects.order_by("name").values_list("name", flat=True)),
    }
