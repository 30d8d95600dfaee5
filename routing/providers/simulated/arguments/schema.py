"""Small schema helpers for tool arguments: whether a value fits, bounds, sizes, null branches."""

from __future__ import annotations

from typing import Any


def fits(schema: dict[str, Any], value: Any) -> bool:
    """Whether `value` (from a tool result) suits a scalar schema."""
    if isinstance(schema.get("enum"), list):
        return value in schema["enum"]
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    checks = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }
    return any(checks.get(k, False) for k in kinds if isinstance(k, str))


def _bound(schema: dict[str, Any], key: str) -> float | None:
    value = schema.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def bounded(schema: dict[str, Any], value: float, *, integer: bool) -> float | int:
    """`value` moved inside the schema's bounds, onto its `multipleOf` grid (as jsonschema checks
    it: value / step a whole number), whole for an integer."""
    low, high = _bound(schema, "minimum"), _bound(schema, "maximum")
    above, below = _bound(schema, "exclusiveMinimum"), _bound(schema, "exclusiveMaximum")
    step = _bound(schema, "multipleOf")
    step = step if step and step > 0 else None

    def inside(v: float) -> bool:
        return (
            (low is None or v >= low)
            and (high is None or v <= high)
            and (above is None or v > above)
            and (below is None or v < below)
            and (step is None or (v / step).is_integer())
            and (not integer or float(v).is_integer())
        )

    unit = step or 1.0
    if integer and step is not None and not step.is_integer():
        unit = float(max(1, round(step)))
    start = round(value / unit)
    candidates = [value] + [unit * (start + d) for k in range(60) for d in (k, -k - 1)]
    for bound in (low, high, above, below):
        if bound is not None:
            near = round(bound / unit)
            candidates += [unit * (near + d) for d in range(-2, 3)]
    chosen = next((v for v in candidates if inside(v)), value)
    if integer or float(chosen).is_integer():
        return int(round(chosen))
    return chosen


def sized(schema: dict[str, Any], text: str) -> str:
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    if len(text) < low:
        text = text + "." * (low - len(text))
    return text[: int(high)] if high is not None else text


def is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def merge_all(schemas: list[Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for sub in schemas:
        if not isinstance(sub, dict):
            continue
        for key, value in sub.items():
            if key == "properties" and isinstance(value, dict):
                merged.setdefault("properties", {}).update(value)
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def unique(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out
