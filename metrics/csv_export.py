"""The one CSV writer of every export (dashboard tables, compare runs).

Cells can hold text from outside (model output, prompts, route and model names): a cell that a
spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage
return) is written with a leading `'` so it stays text (OWASP's advice on CSV injection).
Numbers are left as they are, so a negative figure stays a number.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import Any

from django.http import HttpResponse

__all__ = ["FORMULA_PREFIXES", "csv_cell_safe", "csv_response"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell_safe(value: Any) -> Any:
    """`value`, made text a spreadsheet will not evaluate when it is a string that could be."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_response(*, filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> HttpResponse:
    """A CSV attachment named `filename`: the header, then each row with its cells made safe."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow([csv_cell_safe(name) for name in header])
    for row in rows:
        writer.writerow([csv_cell_safe(value) for value in row])
    return response
