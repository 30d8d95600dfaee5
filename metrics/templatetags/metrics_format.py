"""Number formatting for dashboard tiles and tables."""

from decimal import Decimal
from typing import Any

from django import template

from metrics import charts
from metrics.enums import Endpoint

register = template.Library()


@register.filter
def usd(value: Any) -> str:
    if value is None:
        return "—"
    v = Decimal(value)
    if v and abs(v) < Decimal("0.01"):
        # Two significant digits: a call that cost $0.000012 must not read as $0.0000 (free).
        places = min(max(4, 1 - v.adjusted()), 10)
        return f"${v:.{places}f}"
    return f"${v:,.2f}"


@register.filter
def ms(value: Any) -> str:
    if value is None:
        return "—"
    v = float(value)
    return f"{v / 1000:.2f} s" if v >= 10_000 else f"{v:,.0f} ms"


@register.filter
def pct(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1f}%"


@register.filter
def num(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"


@register.filter
def tile_value(tile: dict) -> str:
    kind, value = tile["kind"], tile["value"]
    return {"usd": usd, "ms": ms, "pct": pct}.get(kind, num)(value)


@register.filter
def tile_change(tile: dict) -> str:
    change = tile.get("change")
    if change is None:
        return "no previous data"
    sign = "+" if change > 0 else ""
    unit = " pts" if tile.get("change_is_points") else "%"
    return f"{sign}{change:.1f}{unit} vs previous"


@register.filter
def tile_trend(tile: dict) -> str:
    """'good', 'bad' or '' for colouring the change."""
    change = tile.get("change")
    if change is None or abs(change) < 0.05:
        return ""
    up_is_bad = tile.get("bad_up", False)
    return "bad" if (change > 0) == up_is_bad else "good"


@register.filter
def model_colour(name: str) -> str:
    return charts.model_colour(str(name))


@register.filter
def endpoint_label(value: Any) -> str:
    """A record's endpoint as the dashboard names it ("messages" → "Messages (Anthropic)"); an
    endpoint of an older or newer release as it is stored."""
    value = str(value or "")
    try:
        return str(Endpoint(value).label)
    except ValueError:
        return value
