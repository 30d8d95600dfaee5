"""Dashboard and call log pages. Thin: parse the query string, call selectors, render.

With htmx the same views render only their panel partial (filters change without a page
load); a history-restore request gets the full page.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET

from dashboards.panels import (
    breaker_panel,
    budget_alerts,
    filter_choices,
    label_maps,
    trace_skips,
    unpriced_models,
)
from metrics import charts
from metrics.csv_export import csv_response
from metrics.filters import PRESETS, Query, parse_query
from metrics.models import CallRecord, CallStatus, RollupGrain
from metrics.selectors.calls import call_trace, calls_page, cost_arithmetic
from metrics.selectors.dashboard import DashboardData, dashboard_figures
from routing.messages import TOOL_CALLS_MARK, response_parse

BREAKDOWNS = [
    ("route", "Route"),
    ("provider", "Provider"),
    ("key", "API key"),
    ("prompt", "Prompt version"),
    ("source", "Source"),
    ("endpoint", "Endpoint"),
]
EXPORTS = {"models", "chains", *(name for name, _ in BREAKDOWNS)}


def _wants_fragment(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.history_restore_request


def _change(now: Any, before: Any) -> float | None:
    if now is None or before in (None, 0):
        return None
    return (float(now) - float(before)) / float(before) * 100


def _model_rows(data: DashboardData) -> list[dict[str, Any]]:
    rows = []
    for name in data.models:
        b = data.by_model[name]
        p50, p95 = b.percentiles(50, 95)
        rows.append(
            {
                "model": name,
                "count": b.count,
                "cost": b.cost,
                "avg_latency": b.avg_latency,
                "p50": p50,
                "p95": p95,
                "errors": b.errors,
                "error_pct": None if b.error_rate is None else 100 * b.error_rate,
                "tokens_in": b.input_tokens,
                "tokens_out": b.output_tokens,
                "unpriced": b.cost_unknown,
            }
        )
    return rows


def _breakdown_rows(data: DashboardData, name: str, labels: dict[Any, str]) -> list[dict[str, Any]]:
    group = data.breakdowns[name]
    rows = []
    for value, b in sorted(group.items(), key=lambda kv: (-kv[1].cost, -kv[1].count)):
        rows.append(
            {
                "value": value,
                "label": labels.get(value, str(value)),
                "count": b.count,
                "cost": b.cost,
                "errors": b.errors,
                "error_pct": None if b.error_rate is None else 100 * b.error_rate,
                "avg_latency": b.avg_latency,
                "tokens": b.input_tokens + b.output_tokens,
            }
        )
    return rows


def _chain_rows(data: DashboardData) -> list[dict[str, Any]]:
    per_chain: dict[str, int] = {}
    for (chain, _step, _model), n in data.chains.items():
        per_chain[chain] = per_chain.get(chain, 0) + n
    return [
        {
            "chain": chain,
            "step": step,
            "model": model,
            "served": n,
            "share": 100 * n / per_chain[chain] if per_chain[chain] else 0,
        }
        for (chain, step, model), n in sorted(data.chains.items())
    ]


def _admin_change_url(config_id: int | None) -> str | None:
    if config_id is None:
        return None
    try:
        return reverse("admin:routing_modelconfig_change", args=[config_id])
    except NoReverseMatch:
        return None


def _csv(filename: str, header: list[str], rows: list[list[Any]]) -> HttpResponse:
    rounded = ([round(v, 2) if isinstance(v, float) else v for v in row] for row in rows)
    return csv_response(filename=filename, header=header, rows=rounded)


def _export(table: str, q: Query, context: dict[str, Any]) -> HttpResponse:
    stamp = f"{q.start:%Y%m%d%H%M}-{q.end:%Y%m%d%H%M}"
    if table == "models":
        header = ["model", "calls", "cost_usd", "avg_latency_ms", "p50_ms", "p95_ms", "errors", "error_pct"]
        rows = [
            [
                r["model"],
                r["count"],
                r["cost"],
                r["avg_latency"],
                r["p50"],
                r["p95"],
                r["errors"],
                r["error_pct"],
            ]
            for r in context["model_rows"]
        ]
    elif table == "chains":
        header = ["chain", "step", "model", "served", "share_pct"]
        rows = [[r["chain"], r["step"], r["model"], r["served"], r["share"]] for r in context["chain_rows"]]
    else:
        header = [table, "calls", "cost_usd", "errors", "error_pct", "avg_latency_ms", "tokens"]
        section = next(s for s in context["breakdowns"] if s["name"] == table)
        rows = [
            [r["label"], r["count"], r["cost"], r["errors"], r["error_pct"], r["avg_latency"], r["tokens"]]
            for r in section["rows"]
        ]
    return _csv(f"orchestrator-{table}-{stamp}.csv", header, rows)


def _common() -> dict[str, Any]:
    return {"tz": settings.TIME_ZONE, "grains": [g.value for g in RollupGrain]}


def _percentile(raw: str, q: Query) -> int:
    """The latency charts' percentile from `pctl` (p50, p95, p99); kept in the page's links."""
    raw = raw.strip().lower()
    if not raw:
        return charts.DEFAULT_PERCENTILE
    wanted = {f"p{p}": p for p in charts.PERCENTILES}.get(raw)
    if wanted is None:
        q.notes.append(f"Unknown percentile {raw[:10]!r}: showing p{charts.DEFAULT_PERCENTILE}.")
        return charts.DEFAULT_PERCENTILE
    q.params["pctl"] = raw
    return wanted


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    choices = filter_choices()
    q = parse_query(request.GET, choices=choices)
    percentile = _percentile(request.GET.get("pctl", ""), q)
    data = dashboard_figures(q=q)
    labels = label_maps(data)
    breakdowns = []
    for name, title in BREAKDOWNS:
        rows = _breakdown_rows(data, name, labels[name])
        if name == "key" and not any(r["value"] for r in rows):
            continue  # no API-key traffic: nothing to break down
        breakdowns.append({"name": name, "title": title, "rows": rows})
    unpriced = unpriced_models(data)
    for u in unpriced:
        u["admin_url"] = _admin_change_url(u["config_id"])
    t, p = data.totals, data.previous
    tiles = [
        {"label": "Spend", "value": t.cost, "kind": "usd", "change": _change(t.cost, p.cost), "bad_up": True},
        {"label": "Requests", "value": t.count, "kind": "int", "change": _change(t.count, p.count)},
        {
            "label": "Error rate",
            "value": None if t.error_rate is None else 100 * t.error_rate,
            "kind": "pct",
            "change": None
            if t.error_rate is None or p.error_rate is None
            else 100 * (t.error_rate - p.error_rate),
            "change_is_points": True,
            "bad_up": True,
        },
        {
            "label": "p50 latency",
            "value": t.p50,
            "kind": "ms",
            "change": _change(t.p50, p.p50),
            "bad_up": True,
        },
        {
            "label": "p95 latency",
            "value": t.p95,
            "kind": "ms",
            "change": _change(t.p95, p.p95),
            "bad_up": True,
        },
        {"label": "Tokens", "value": t.tokens, "kind": "int", "change": _change(t.tokens, p.tokens)},
    ]
    context: dict[str, Any] = {
        **_common(),
        "q": q,
        "choices": choices,
        "presets": PRESETS,
        "data": data,
        "notes": q.notes + data.notes,
        "tiles": tiles,
        "model_rows": _model_rows(data),
        "breakdowns": breakdowns,
        "chain_rows": _chain_rows(data),
        "unpriced": unpriced,
        "all_sources_qs": q.query_string(source="all"),
        "hidden": [
            {"source": source, "label": labels["source"].get(source, source), "count": n}
            for source, n in sorted(data.hidden.items(), key=lambda kv: -kv[1])
        ],
    }
    export = request.GET.get("export", "")
    if export:
        if export in EXPORTS:
            return _export(export, q, context)
        context["notes"].append(f"Unknown export {export[:20]!r}: choose one of the table links.")
    if not data.empty:
        context["charts"] = [
            {"name": name, "id": f"fig-{name}", "fig": fig}
            for name, fig in charts.dashboard_charts(data, percentile=percentile).items()
        ]
    context["percentile"] = percentile
    context["percentile_links"] = [
        {"p": p, "qs": q.query_string(pctl=f"p{p}"), "current": p == percentile} for p in charts.PERCENTILES
    ]
    context["breakers"] = breaker_panel()
    context["budget_alerts"] = budget_alerts()
    template = "metrics/dashboard.html#panel" if _wants_fragment(request) else "metrics/dashboard.html"
    return render(request, template, context)


@require_GET
def calls(request: HttpRequest) -> HttpResponse:
    choices = filter_choices()
    q = parse_query(request.GET, choices=choices, allow_all=True)
    notes = list(q.notes)
    page = calls_page(
        q=q, before=request.GET.get("before", ""), after=request.GET.get("after", ""), notes=notes
    )
    context = {
        **_common(),
        "q": q,
        "choices": choices,
        "presets": PRESETS,
        "page": page,
        "notes": notes,
        "statuses": CallStatus,
        "any_calls": bool(page.calls) or CallRecord.objects.exists(),
    }
    template = "metrics/calls.html#panel" if _wants_fragment(request) else "metrics/calls.html"
    return render(request, template, context)


def _trace_rows(attempts: list[CallRecord], skipped: list[charts.WaterfallSkip]) -> list[dict[str, Any]]:
    """The trace table in plan order: each attempt, with the steps skipped before it."""
    rows: list[dict[str, Any]] = []
    for n, a in enumerate(attempts):
        rows += [{"skip": s} for s in skipped if s.before == n]
        rows.append({"attempt": a})
    return rows


def _tool_call_row(call: dict[str, Any]) -> dict[str, str]:
    """A recorded tool call as the page shows it: name, id, and its arguments laid out."""
    function = call.get("function")
    if not isinstance(function, dict):
        function = {}
    arguments = str(function.get("arguments", ""))
    with contextlib.suppress(ValueError):  # not JSON: shown as recorded
        arguments = json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    return {"id": str(call.get("id", "")), "name": str(function.get("name", "")), "arguments": arguments}


@require_GET
def call_detail(request: HttpRequest, call_id: int) -> HttpResponse:
    record = get_object_or_404(CallRecord, pk=call_id)
    attempts = call_trace(record=record, tool_calls_mark=TOOL_CALLS_MARK)
    skipped = trace_skips(attempts)
    answer_text, calls = response_parse(record.response_text)
    context = {
        "call": record,
        "answer_text": answer_text,
        "answer_calls": [_tool_call_row(c) for c in calls],
        "attempts": attempts,
        "rows": _trace_rows(attempts, skipped),
        "waterfall": charts.trace_waterfall(attempts, skipped),
        "cost": cost_arithmetic(record),
        "admin_url": _admin_change_url(record.model_id),
    }
    return render(request, "metrics/call_detail.html", context)
