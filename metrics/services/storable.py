"""Text every database can store: PostgreSQL refuses NUL in text columns, and neither
PostgreSQL nor SQLite can encode a lone surrogate (`"\\ud800"`) as UTF-8. A record must never
be lost for its content, so such characters are replaced with U+FFFD before the record is
queued (and spooled), and the record says so (`CallRecord.text_replaced`)."""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_storable(text: str) -> tuple[str, bool]:
    """`text` with each character the database cannot store replaced; and whether any was."""
    if text.isascii():  # O(1) in CPython: most text takes this path
        if "\x00" not in text:
            return text, False
        return text.replace("\x00", REPLACEMENT), True
    if _UNSTORABLE.search(text) is None:
        return text, False
    return _UNSTORABLE.sub(REPLACEMENT, text), True


def fields_storable(fields: dict[str, Any]) -> dict[str, Any]:
    """Make every text value of a record's fields storable, in place; sets `text_replaced`
    when something was replaced (and keeps it set when it already was)."""
    replaced = False
    for name, value in fields.items():
        if isinstance(value, str):
            safe, changed = text_storable(value)
            if changed:
                fields[name] = safe
                replaced = True
    if replaced:
        fields["text_replaced"] = True
    return fields
