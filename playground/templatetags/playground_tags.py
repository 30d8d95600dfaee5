"""Rendering helpers for untrusted model output and run figures."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

register = template.Library()

# Raw HTML in the Markdown is shown as text (html=False); nh3 then removes anything unsafe
# that Markdown itself could produce (javascript: links, odd attributes).
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
_ALLOWED_TAGS = {
    "p", "br", "hr", "pre", "code", "blockquote", "em", "strong", "del", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a",
}  # fmt: skip


def markdown_html(text: str) -> str:
    html = _markdown.render(text or "")
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes={"a": {"href", "title"}, "code": {"class"}, "th": {"align"}, "td": {"align"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


@register.filter
def markdown_safe(text: str) -> SafeString:
    return mark_safe(markdown_html(text))  # noqa: S308  (sanitised by nh3 above)


@register.filter
def usd(value: Any) -> str:
    if value is None or value == "":
        return "—"
    value = Decimal(str(value))
    if value == 0:
        return "$0"
    if value < Decimal("0.01"):
        return f"${value:.6f}".rstrip("0")
    return f"${value:.4f}"


PARTIAL = {"cancelled": "partial: cancelled", "error": "partial: failed"}


@register.filter
def billed_usd(value: Any, status: str) -> str:
    """A cost as `usd`; an answer that was cancelled or failed still billed the tokens it
    used, and says that its cost is for a partial answer."""
    text = usd(value)
    if value is None or value == "" or status not in PARTIAL:
        return text
    return f"{text} ({PARTIAL[status]})"


@register.filter
def ms(value: Any) -> str:
    if value is None or value == "":
        return "—"
    value = float(value)
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


@register.filter
def ctx(value: Any) -> str:
    """A context window, short: 128000 → "128K ctx", 1048576 → "1M ctx"."""
    if value is None or value == "":
        return ""
    tokens = int(value)
    if tokens >= 1_000_000:
        return f"{tokens / 1_000_000:.3g}M ctx"
    if tokens >= 1000:
        return f"{tokens / 1000:.3g}K ctx"
    return f"{tokens} ctx"


@register.filter
def price(value: Any) -> str:
    if value is None:
        return "?"
    value = Decimal(str(value))
    return f"${value.normalize():f}"


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    if not mapping:
        return None
    return mapping.get(key)


@register.filter
def pct(value: Any) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.0f}%"


@register.filter
def pretty_json(text: Any) -> str:
    """Tool-call arguments (JSON text) indented for reading; as they came when not JSON.
    Returned as plain text: the template escapes it."""
    if not isinstance(text, str):
        return json.dumps(text, indent=2, ensure_ascii=False)
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
