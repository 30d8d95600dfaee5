"""OpenAI's sampling and format parameters beyond temperature and max_tokens, in one typed place.

`SamplingOptions` travels from the caller (the Python API's keyword arguments, the gateway's
request body) on the engine's Trace to every attempt's `ProviderRequest`, so a route's or a
chain's fallback models get the same options as the first. Each provider kind decides what
it can honour (see docs/gateway.md, "Parameters"); a kind that cannot honour something a
caller asked for says so with `sampling_refusal(options)` in its package, and the engine
passes such a model over instead of calling it.

`sampling_options(values)` validates a mapping with OpenAI's names (a request body, or the
Python API's keyword arguments) and raises `InvalidRequest` naming the field (`param`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from routing.errors import InvalidRequest

# The names as OpenAI spells them (request body fields and Python API keyword arguments).
SAMPLING_ORDER = ("top_p", "stop", "seed", "presence_penalty", "frequency_penalty", "response_format", "user")
SAMPLING_FIELDS = frozenset(SAMPLING_ORDER)
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
MAX_STOP = 4
SEED_RANGE = (-(2**63), 2**63 - 1)
_SCHEMA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class SamplingOptions:
    """What the caller set (None / empty: not set; nothing unset is ever sent upstream).

    `response_format` is OpenAI's shape, validated and reduced to the known keys:
    `{"type": "text"}`, `{"type": "json_object"}` or `{"type": "json_schema", "json_schema":
    {"name", "schema"?, "strict"?, "description"?}}`."""

    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    response_format: dict[str, Any] | None = field(default=None, hash=False)
    user: str | None = None

    @property
    def format_type(self) -> str:
        """`text`, `json_object` or `json_schema` (`text` when none was asked for)."""
        return self.response_format["type"] if self.response_format else "text"

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The JSON schema of a `json_schema` response format (None otherwise or without one)."""
        if self.format_type != "json_schema":
            return None
        return self.response_format["json_schema"].get("schema")  # type: ignore[index]


NO_SAMPLING = SamplingOptions()


def type_name(value: Any) -> str:
    """A JSON value's type as a person reads it in an error message."""
    return {dict: "object", list: "array", tuple: "array", str: "string", bool: "boolean"}.get(
        type(value), "null" if value is None else "number"
    )


def _wrong_type(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"{param} must be {expected}, not {type_name(value)}.", param=param, code="invalid_type"
    )


def number_in_range(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, float) and not math.isfinite(value):  # JSON's NaN / Infinity extensions
        shown = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        raise InvalidRequest(f"{name} must be a finite number, not {shown}.", param=name, code="invalid_type")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(name, "a number", value)
    if not low <= value <= high:
        raise InvalidRequest(
            f"{name} must be between {low:g} and {high:g}, got {value}.", param=name, code="out_of_range"
        )
    return float(value)


def _stop(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        items: list[Any] | tuple[Any, ...] = (value,)
    elif isinstance(value, list | tuple):
        items = value
        if len(items) > MAX_STOP:
            raise InvalidRequest(
                f"stop may hold at most {MAX_STOP} sequences, got {len(items)}.",
                param="stop",
                code="out_of_range",
            )
    else:
        raise _wrong_type("stop", "a string or an array of strings", value)
    for i, item in enumerate(items):
        param = "stop" if isinstance(value, str) else f"stop[{i}]"
        if not isinstance(item, str):
            raise _wrong_type(param, "a string", item)
        if not item:
            raise InvalidRequest(f"{param} must not be empty.", param=param, code="invalid_value")
    return tuple(items)


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type("seed", "an integer", value)
    if not SEED_RANGE[0] <= value <= SEED_RANGE[1]:
        raise InvalidRequest("seed must fit in a 64-bit integer.", param="seed", code="out_of_range")
    return value


def _response_format(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _wrong_type("response_format", "an object", value)
    kind = value.get("type")
    if kind not in RESPONSE_FORMATS:
        raise InvalidRequest(
            f"response_format.type must be one of {', '.join(RESPONSE_FORMATS)}; got {kind!r}.",
            param="response_format.type",
            code="invalid_value",
        )
    if kind != "json_schema":
        return {"type": kind}
    spec = value.get("json_schema")
    param = "response_format.json_schema"
    if spec is None:
        raise InvalidRequest(f"{param} is required when response_format.type is 'json_schema'.", param=param)
    if not isinstance(spec, Mapping):
        raise _wrong_type(param, "an object", spec)
    name = spec.get("name")
    if name is None:
        raise InvalidRequest(f"{param}.name is required.", param=f"{param}.name")
    if not isinstance(name, str):
        raise _wrong_type(f"{param}.name", "a string", name)
    if not _SCHEMA_NAME.fullmatch(name):
        raise InvalidRequest(
            f"{param}.name must be 1 to 64 letters, digits, underscores or dashes; got {name!r}.",
            param=f"{param}.name",
            code="invalid_value",
        )
    out: dict[str, Any] = {"name": name}
    schema = spec.get("schema")
    if schema is not None:
        if not isinstance(schema, Mapping):
            raise _wrong_type(f"{param}.schema", "an object", schema)
        out["schema"] = dict(schema)
    strict = spec.get("strict")
    if strict is not None:
        if not isinstance(strict, bool):
            raise _wrong_type(f"{param}.strict", "a boolean", strict)
        out["strict"] = strict
    description = spec.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise _wrong_type(f"{param}.description", "a string", description)
        out["description"] = description
    return {"type": "json_schema", "json_schema": out}


def sampling_options(values: Mapping[str, Any]) -> SamplingOptions:
    """Validate the sampling fields of `values` (other keys are ignored); `NO_SAMPLING` when
    none is set. Raises InvalidRequest with `param` naming the wrong field."""
    found: dict[str, Any] = {}
    for name in SAMPLING_ORDER:
        value = values.get(name)
        if value is None:
            continue
        if name == "top_p":
            found[name] = number_in_range(name, value, 0, 1)
        elif name in ("presence_penalty", "frequency_penalty"):
            found[name] = number_in_range(name, value, -2, 2)
        elif name == "stop":
            stop = _stop(value)
            if stop:
                found[name] = stop
        elif name == "seed":
            found[name] = _seed(value)
        elif name == "response_format":
            found[name] = _response_format(value)
        elif name == "user":
            if not isinstance(value, str):
                raise _wrong_type("user", "a string", value)
            if value:
                found[name] = value
    return SamplingOptions(**found) if found else NO_SAMPLING
