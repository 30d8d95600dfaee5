"""Plotly figures for the dashboard and the trace page, built in Python.

Each function returns the figure as a plain dict (`Figure.to_plotly_json()`), ready for
`json_script`; plotly.js (from our static files) draws it. Every model keeps one colour on
every chart: a stable hash of its name picks from the palette.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from metrics.rollups import local_zone
from metrics.selectors.dashboard import DashboardData

# Distinct hues first (a hash picks from all of them; the order only matters to the eye).
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#0b3d91",
    "#e0a800",
    "#222222",
    "#006d77",
]


# Salt chosen so the models in config/defaults.yaml get nine different colours.
COLOUR_SALT = "6:"


def model_colour(name: str) -> str:
    digest = hashlib.sha1(f"{COLOUR_SALT}{name}".encode(), usedforsecurity=False).digest()
    return PALETTE[int.from_bytes(digest[:4], "big") % len(PALETTE)]


def _layout(title: str, yaxis: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}, "x": 0.01},
        "height": 300,
        "margin": {"l": 55, "r": 10, "t": 36, "b": 40},
        "legend": {"orientation": "h", "y": -0.18, "font": {"size": 11}},
        "hovermode": "x unified",
        "yaxis": {"title": {"text": yaxis}, "rangemode": "tozero", "gridcolor": "#eceef2"},
        "xaxis": {"gridcolor": "#f3f4f7"},
        "plot_bgcolor": "#fff",
        "paper_bgcolor": "#fff",
        "showlegend": True,
        **extra,
    }


def _x(buckets: list[datetime]) -> list[str]:
    zone = local_zone()
    return [b.astimezone(zone).strftime("%Y-%m-%d %H:%M") for b in buckets]


Trace = tuple[dict[str, Any], dict[str, list[Any]]]


@functools.lru_cache(maxsize=4096)
def _validated(kind: str, props_json: str) -> dict[str, Any]:
    return getattr(go, kind)(**json.loads(props_json)).to_plotly_json()


@functools.lru_cache(maxsize=256)
def _validated_layout(layout_json: str) -> dict[str, Any]:
    return go.Layout(**json.loads(layout_json)).to_plotly_json()


def _trace(kind: type, arrays: dict[str, list[Any]], **props: Any) -> Trace:
    """A trace's style, validated by plotly (and cached: the same model gets the same style
    on every page), and its data arrays, added after validation: plotly's per-element
    validation of long arrays would otherwise dominate the page's time."""
    return _validated(kind.__name__, json.dumps(props, sort_keys=True)), arrays


def _fig(traces: list[Trace], layout: dict[str, Any], empty: str = "") -> dict[str, Any]:
    if not traces and empty:
        layout = {
            **layout,
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "annotations": [
                {"text": empty, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}
            ],
        }
    return {
        "data": [{**style, **arrays} for style, arrays in traces],
        "layout": copy.deepcopy(_validated_layout(json.dumps(layout, sort_keys=True))),
    }


# Latency has no value in a bucket without calls, so a series can be a single point or
# islands between gaps, which a bare line does not draw at all: markers show them.
GAPPY_LINE: dict[str, Any] = {"mode": "lines+markers", "marker": {"size": 5}}


PERCENTILES = (50, 95, 99)
DEFAULT_PERCENTILE = 95


def money_axis(peak: float) -> dict[str, Any]:
    """A y axis in dollars with enough decimals for the peak: "$0.0004", never "400µ"."""
    decimals = 2 if peak <= 0 else max(2, min(10, 1 - math.floor(math.log10(peak / 4))))
    return {"tickprefix": "$", "tickformat": f",.{decimals}~f", "hoverformat": f",.{decimals + 2}~f"}


def dashboard_charts(
    data: DashboardData, *, percentile: int = DEFAULT_PERCENTILE
) -> dict[str, dict[str, Any]]:
    """The dashboard's figures; latency and time to first token draw one line per model at
    `percentile` (50, 95 or 99)."""
    x = _x(data.buckets)
    stacked: dict[datetime, float] = {}
    cost: list[Trace] = []
    requests: list[Trace] = []
    latency: list[Trace] = []
    errors: list[Trace] = []
    tokens: list[Trace] = []
    ttft: list[Trace] = []
    for model in data.models:
        colour = model_colour(model)
        cells = [data.series.get((b, model)) for b in data.buckets]
        for b, c in zip(data.buckets, cells, strict=True):
            if c:
                stacked[b] = stacked.get(b, 0.0) + float(c.cost)
        cost.append(
            _trace(
                go.Bar,
                {"x": x, "y": [float(c.cost) if c else 0 for c in cells]},
                name=model,
                legendgroup=model,
                marker={"color": colour},
            )
        )
        requests.append(
            _trace(
                go.Scatter,
                {"x": x, "y": [c.count if c else 0 for c in cells]},
                name=model,
                legendgroup=model,
                mode="lines",
                line={"color": colour},
            )
        )
        errors.append(
            _trace(
                go.Scatter,
                {"x": x, "y": [round(100 * c.errors / c.count, 2) if c and c.count else None for c in cells]},
                name=model,
                legendgroup=model,
                mode="lines+markers",
                line={"color": colour},
                connectgaps=False,
            )
        )
        latency.append(
            _trace(
                go.Scatter,
                {"x": x, "y": [c.percentiles(percentile)[0] if c else None for c in cells]},
                name=model,
                legendgroup=model,
                **GAPPY_LINE,
                line={"color": colour},
            )
        )
        tt = [c.ttft_percentiles(percentile)[0] if c else None for c in cells]
        if any(v is not None for v in tt):
            ttft.append(
                _trace(
                    go.Scatter,
                    {"x": x, "y": tt},
                    name=model,
                    legendgroup=model,
                    **GAPPY_LINE,
                    line={"color": colour},
                )
            )
        for label, dash, values in (
            ("in", "solid", [c.input_tokens if c else 0 for c in cells]),
            ("out", "dash", [c.output_tokens if c else 0 for c in cells]),
        ):
            tokens.append(
                _trace(
                    go.Scatter,
                    {"x": x, "y": values},
                    name=f"{model} {label}",
                    legendgroup=model,
                    mode="lines",
                    line={"color": colour, "dash": dash},
                )
            )
    cost_layout = _layout("Cost by model", "USD", barmode="stack")
    cost_layout["yaxis"].update(money_axis(max(stacked.values(), default=0.0)))
    return {
        "cost": _fig(cost, cost_layout),
        "requests": _fig(requests, _layout("Requests by model", "calls")),
        "latency": _fig(latency, _layout(f"Latency p{percentile} by model", "ms")),
        "errors": _fig(errors, _layout("Error rate by model", "%")),
        "tokens": _fig(tokens, _layout("Tokens in / out by model", "tokens")),
        "ttft": _fig(
            ttft,
            _layout(f"Time to first token p{percentile} (streams)", "ms"),
            empty="No streamed calls in this window: time to first token is measured on streams.",
        ),
    }


@dataclass(frozen=True)
class WaterfallSkip:
    """A step the request passed over without a call, shown before attempt number `before`."""

    model_name: str
    chain_step: int | None
    reason: str
    before: int  # index in the attempts list


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def trace_waterfall(attempts: list[Any], skipped: Sequence[WaterfallSkip] = ()) -> dict[str, Any]:
    """Attempts of one request as horizontal bars (offset from the first, length = latency),
    with the steps it skipped as hollow markers in plan order, each saying why."""
    if not attempts:
        return _fig([], _layout("Attempts", ""))
    t0 = min(a.created_at for a in attempts)
    offsets = [max(0.0, (a.created_at - t0).total_seconds() * 1000) for a in attempts]
    labels, bases, widths, colours, texts = [], [], [], [], []
    order: list[str] = []
    skip_y, skip_x, skip_text = [], [], []
    by_position: dict[int, list[WaterfallSkip]] = {}
    for s in skipped:
        by_position.setdefault(s.before, []).append(s)
    row = 0
    for n, a in enumerate(attempts):
        for s in by_position.get(n, []):
            row += 1
            where = f"step {s.chain_step + 1}" if s.chain_step is not None else "route model"
            label = f"{row}. {s.model_name} ({where}, skipped)"
            order.append(label)
            skip_y.append(label)
            skip_x.append(offsets[n])
            skip_text.append(f"skipped · {_short(s.reason)}")
        row += 1
        step = f"step {a.chain_step + 1}" if a.chain_step is not None else (a.role or "call")
        label = f"{row}. {a.model_name} ({step})"
        order.append(label)
        labels.append(label)
        latency = a.latency_ms or 0.0
        bases.append(offsets[n])
        widths.append(max(latency, 1.0))
        colours.append(model_colour(a.model_name) if a.status == "ok" else "#b3261e")
        texts.append(f"{a.status} · {latency:.0f} ms" + (f" · {a.error_class}" if a.error_class else ""))
    traces = [
        _trace(
            go.Bar,
            {"y": labels, "x": widths, "base": bases, "text": texts},
            orientation="h",
            marker={"color": colours},
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}<br>%{text}<extra></extra>",
        )
    ]
    if skip_y:
        traces.append(
            _trace(
                go.Scatter,
                {"y": skip_y, "x": skip_x, "text": skip_text},
                mode="markers+text",
                marker={"symbol": "circle-open", "size": 11, "color": "#6b7280", "line": {"width": 2}},
                textposition="middle right",
                textfont={"color": "#4b5563"},
                cliponaxis=False,
                hovertemplate="%{y}<br>%{text}<extra></extra>",
            )
        )
    end = max(b + w for b, w in zip(bases, widths, strict=True))
    layout = _layout("Attempts (ms from the first)", "", showlegend=False, hovermode="closest")
    layout["height"] = 120 + 36 * len(order)
    layout["margin"] = {"l": 10, "r": 30, "t": 36, "b": 40}
    layout["yaxis"] = {
        "autorange": "reversed",
        "automargin": True,
        "categoryorder": "array",
        "categoryarray": order,
    }
    # Room right of the longest bar for its label ("ok · 1234 ms · transient"), and for the
    # skip reasons, so nothing is cut at the edge.
    room = 1.45 if skip_y else 1.3
    # A little room left of 0 too, so a skip's marker does not touch its axis label.
    layout["xaxis"] = {"title": {"text": "ms"}, "range": [-end * 0.03, end * room], "zeroline": True}
    return _fig(traces, layout)
