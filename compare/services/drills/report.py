"""A drill's report: success rate, paths, latencies, breaker openings, the baseline beside it."""

from __future__ import annotations

import statistics
from typing import Any

from compare.models import Drill
from compare.services.drills.inputs import DrillInputError, drill_target_models
from metrics.selectors.records import trace_usage


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def figures(values: list[float]) -> dict[str, float | None]:
    return {
        "mean": statistics.fmean(values) if values else None,
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "max": max(values) if values else None,
    }


def _openings(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    opened = []
    for model, state in after.items():
        if state.get("state") not in ("open", "half_open"):
            continue
        prior = before.get(model, {})
        if prior.get("state") != state.get("state") or prior.get("opened_at") != state.get("opened_at"):
            opened.append({"model": model, "state": state.get("state"), "opened_at": state.get("opened_at")})
    return opened


def drill_report(drill: Drill, outcomes: list[dict[str, Any]], before: dict, after: dict) -> dict[str, Any]:
    ok = [o for o in outcomes if o["ok"]]
    served: dict[str, int] = {}
    for o in ok:
        served[o["served_by"]] = served.get(o["served_by"], 0) + 1
    traces = [o["trace_id"] for o in outcomes]
    usage = trace_usage(trace_ids=traces)
    records = {"total": usage.calls if usage else 0, "ok": usage.ok if usage else 0}
    paths: dict[str, int] = {}
    for o in outcomes:
        key = " → ".join(f"{p['model']} {'✓' if p['status'] == 'ok' else '✗'}" for p in o["path"]) or "—"
        paths[key] = paths.get(key, 0) + 1
    added = [o["added_latency_ms"] for o in ok if o["added_latency_ms"] is not None]
    # Requests that never tried a failing model of the target (circuit open, no key, disabled).
    try:
        planned = set(drill_target_models(target_kind=drill.target_kind, target=drill.target))
    except DrillInputError:
        planned = set()
    skipped = {
        f["model"]: sum(
            1 for o in outcomes if o["path"] and f["model"] not in {p["model"] for p in o["path"]}
        )
        for f in drill.faults
        if f["model"] in planned
    }
    return {
        "requests": len(outcomes),
        "ok": len(ok),
        "failed": len(outcomes) - len(ok),
        "success_rate": len(ok) / len(outcomes) if outcomes else 0.0,
        "served_by": dict(sorted(served.items(), key=lambda kv: -kv[1])),
        "path_counts": dict(sorted(paths.items(), key=lambda kv: -kv[1])),
        "attempts": sum(len(o["path"]) for o in outcomes),
        "latency_ms": figures([o["latency_ms"] for o in outcomes]),
        "added_latency_ms": figures(added),
        "records": {"total": records["total"], "ok": records["ok"]},
        "breakers": {"before": before, "after": after, "opened": _openings(before, after)},
        "never_tried": skipped,
        "faults": drill.faults,
        "requests_detail": sorted(outcomes, key=lambda o: o["index"]),
    }


def _difference(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def baseline_report(baseline: list[dict[str, Any]], outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """The same requests without faults, and how much slower the drilled ones were."""
    base = figures([o["latency_ms"] for o in baseline if o["ok"]])
    drilled = figures([o["latency_ms"] for o in outcomes if o["ok"]])
    return {
        "requests": len(baseline),
        "ok": sum(1 for o in baseline if o["ok"]),
        "latency_ms": base,
        "added_ms": {k: _difference(drilled[k], base[k]) for k in ("mean", "p50", "p95")},
        "trace_ids": [o["trace_id"] for o in baseline],
    }
