"""Prompt sets from pasted text or uploaded CSV / JSONL, with the row at fault on bad input.

Every row has `input` (required), `expected` and `task_type` (optional). Nothing here
touches the database: the caller decides what to do with the rows or the error.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Literal

Format = Literal["lines", "csv", "jsonl"]
FORMATS: dict[str, str] = {
    "lines": "One prompt per line",
    "csv": "CSV (columns input, expected, task_type)",
    "jsonl": 'JSONL ({"input": …, "expected": …, "task_type": …} per line)',
}
KNOWN_FIELDS = ("input", "expected", "task_type")


class PromptSetError(ValueError):
    """A prompt set that cannot be used; the message names the row and what to fix."""


@dataclass(frozen=True)
class PromptRow:
    input: str
    expected: str = ""
    task_type: str = ""


def _row(values: dict[str, object], *, where: str) -> PromptRow:
    unknown = sorted(k for k in values if k not in KNOWN_FIELDS)
    if unknown:
        raise PromptSetError(
            f"{where}: unknown field {', '.join(repr(k) for k in unknown)}; use input, expected, task_type."
        )
    cleaned: dict[str, str] = {}
    for key in KNOWN_FIELDS:
        value = values.get(key)
        if value is None:
            cleaned[key] = ""
        elif isinstance(value, str):
            cleaned[key] = value
        elif key == "expected" and isinstance(value, int | float | bool):
            cleaned[key] = json.dumps(value)
        else:
            raise PromptSetError(f"{where}: {key!r} must be text, not {type(value).__name__}.")
    if not cleaned["input"].strip():
        raise PromptSetError(f"{where}: 'input' is empty.")
    return PromptRow(
        input=cleaned["input"], expected=cleaned["expected"], task_type=cleaned["task_type"].strip()
    )


def _parse_lines(text: str) -> list[PromptRow]:
    return [PromptRow(input=line.strip()) for line in text.splitlines() if line.strip()]


def _parse_jsonl(text: str) -> list[PromptRow]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"Line {number}"
        try:
            values = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptSetError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}).") from None
        if not isinstance(values, dict):
            raise PromptSetError(f'{where}: expected an object like {{"input": "…"}}.')
        rows.append(_row(values, where=where))
    return rows


def _parse_csv(text: str) -> list[PromptRow]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = []
    try:
        header = next(reader, None)
        if header is None:
            return []
        header = [h.strip().lower() for h in header]
        if "input" not in header:
            raise PromptSetError(
                f"Line 1: the CSV header needs an 'input' column (found: {', '.join(header)})."
            )
        duplicates = sorted({h for h in header if header.count(h) > 1})
        if duplicates:
            raise PromptSetError(f"Line 1: duplicate column {', '.join(duplicates)}.")
        for values in reader:
            where = f"Line {reader.line_num}"
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise PromptSetError(f"{where}: {len(values)} fields where the header has {len(header)}.")
            rows.append(_row(dict(zip(header, values, strict=True)), where=where))
    except csv.Error as exc:
        raise PromptSetError(f"Line {reader.line_num}: malformed CSV ({exc}).") from None
    return rows


def prompt_set_parse(text: str, *, fmt: str, max_rows: int) -> list[PromptRow]:
    """Parse a prompt set; raise PromptSetError naming the row at fault."""
    if fmt not in FORMATS:
        raise PromptSetError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    text = text.lstrip("\ufeff")
    parser = {"lines": _parse_lines, "csv": _parse_csv, "jsonl": _parse_jsonl}[fmt]
    rows = parser(text)
    if not rows:
        raise PromptSetError("The prompt set is empty: paste some prompts or upload a file.")
    if len(rows) > max_rows:
        raise PromptSetError(
            f"The prompt set has {len(rows)} prompts; the limit is {max_rows} (COMPARE_MAX_PROMPTS)."
        )
    return rows


def upload_format(filename: str) -> str:
    """Guess the format of an uploaded file from its name."""
    lowered = filename.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise PromptSetError(f"{filename}: upload a .csv or .jsonl file.")


def upload_text(data: bytes, *, filename: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PromptSetError(f"{filename}: not UTF-8 text (byte {exc.start}).") from None
