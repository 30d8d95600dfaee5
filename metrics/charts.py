"""Plotly figures for the dashboard and the trace page, built in Python.

Each function returns the figure as a plain dict (`Figure.to_plotly_json()`), ready for
`json_script`; plotly.js (from our static files) draws it. Every model keeps one colour on
every chart: a stable hash of its name picks from the palette.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from metrics.histogram import hist_percentiles
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


def _fig(traces: list[Any], layout: dict[str, Any], empty: str = "") -> dict[str, Any]:
    if not traces and empty:
        layout = {
            **layout,
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "annotations": [
                {"text": empty, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}
            ],
        }
    return go.Figure(data=traces, layout=layout).to_plotly_json()


def dashboard_charts(data: DashboardData) -> dict[str, dict[str, Any]]:
    x = _x(data.buckets)
    models = data.models
    cost, requests, latency, errors, tokens, ttft = [], [], [], [], [], []
    for model in models:
        colour = model_colour(model)
        cells = [data.series.get((b, model)) for b in data.buckets]
        common = {"x": x, "name": model, "legendgroup": model}
        cost.append(go.Bar(**common, y=[float(c.cost) if c else 0 for c in cells], marker={"color": colour}))
        requests.append(
            go.Scatter(**common, y=[c.count if c else 0 for c in cells], mode="lines", line={"color": colour})
        )
        errors.append(
            go.Scatter(
                **common,
                y=[round(100 * c.errors / c.count, 2) if c and c.count else None for c in cells],
                mode="lines+markers",
                line={"color": colour},
                connectgaps=False,
            )
        )
        lat = [hist_percentiles(c.latency_hist, (50, 95, 99)) if c else [None] * 3 for c in cells]
        for n, (label, dash) in enumerate((("p50", "solid"), ("p95", "dash"), ("p99", "dot"))):
            latency.append(
                go.Scatter(
                    x=x,
                    y=[v[n] for v in lat],
                    name=f"{model} {label}",
                    legendgroup=model,
                    mode="lines",
                    line={"color": colour, "dash": dash},
                )
            )
        tt = [hist_percentiles(c.ttft_hist, (50, 95)) if c else [None] * 2 for c in cells]
        if any(v[0] is not None for v in tt):
            for n, (label, dash) in enumerate((("p50", "solid"), ("p95", "dash"))):
                ttft.append(
                    go.Scatter(
                        x=x,
                        y=[v[n] for v in tt],
                        name=f"{model} {label}",
                        legendgroup=model,
                        mode="lines",
                        line={"color": colour, "dash": dash},
                    )
                )
        tokens.append(
            go.Scatter(
                x=x,
                y=[c.input_tokens if c else 0 for c in cells],
                name=f"{model} in",
                legendgroup=model,
                mode="lines",
                line={"color": colour},
            )
        )
        tokens.append(
            go.Scatter(
                x=x,
                y=[c.output_tokens if c else 0 for c in cells],
                name=f"{model} out",
                legendgroup=model,
                mode="lines",
                line={"color": colour, "dash": "dash"},
            )
        )
    return {
        "cost": _fig(cost, _layout("Cost by model", "USD", barmode="stack")),
        "requests": _fig(requests, _layout("Requests by model", "calls")),
        "latency": _fig(latency, _layout("Latency p50 / p95 / p99 by model", "ms")),
        "errors": _fig(errors, _layout("Error rate by model", "%")),
        "tokens": _fig(tokens, _layout("Tokens in / out by model", "tokens")),
        "ttft": _fig(
            ttft,
            _layout("Time to first token p50 / p95 (streams)", "ms"),
            empty="No streamed calls in this window: time to first token is measured on streams.",
        ),
    }


def trace_waterfall(attempts: list[Any]) -> dict[str, Any]:
    """Attempts of one request as horizontal bars: offset from the first, length = latency."""
    if not attempts:
        return _fig([], _layout("Attempts", ""))
    t0 = min(a.created_at for a in attempts)
    labels, bases, widths, colours, texts = [], [], [], [], []
    for n, a in enumerate(attempts, 1):
        step = f"step {a.chain_step}" if a.chain_step is not None else (a.role or "call")
        labels.append(f"{n}. {a.model_name} ({step})")
        latency = a.latency_ms or 0.0
        # created_at marks the attempt's end when the engine stamps it after the call.
        bases.append(max(0.0, (a.created_at - t0).total_seconds() * 1000))
        widths.append(max(latency, 1.0))
        colours.append(model_colour(a.model_name) if a.status == "ok" else "#b3261e")
        texts.append(f"{a.status} · {latency:.0f} ms" + (f" · {a.error_class}" if a.error_class else ""))
    bar = go.Bar(
        y=labels,
        x=widths,
        base=bases,
        orientation="h",
        marker={"color": colours},
        text=texts,
        textposition="auto",
        hovertemplate="%{y}<br>%{text}<extra></extra>",
    )
    layout = _layout("Attempts (ms from the first)", "", showlegend=False, hovermode="closest")
    layout["height"] = 120 + 36 * len(attempts)
    layout["yaxis"] = {"autorange": "reversed"}
    layout["xaxis"] = {"title": {"text": "ms"}, "rangemode": "tozero"}
    return _fig([bar], layout)
