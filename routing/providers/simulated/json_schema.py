"""JSON answers: valid against the schema given (in `response_format` or in the prompt).

Values follow the schema (type, enum, const, required, properties, items, min/max bounds,
lengths, formats, anyOf/oneOf/allOf) and mean something: an enum named like a label or a
sentiment is classified from the input, an `answer`/`result` property holds the answer to the
question asked, a `summary` a summary. A JSON ask without a schema ("Reply in JSON with an
answer field") gets the fields it names. Asked in the prompt only (no response_format), a
model that errs at its `instructions` rate wraps the JSON in prose and a code fence, as cheap
models do; with a response_format the answer is always bare JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

from routing.providers.simulated import classification, summarisation
from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Answer, Solver, Task, draw, errs, topic

MAX_DEPTH = 8
_ASKS_JSON = re.compile(r"\bjson\b", re.IGNORECASE)
_FIELDS = re.compile(
    r"\b(?:fields?|keys?|properties)\s*[:(]?\s*((?:[`'\"]?\w+[`'\"]?(?:\s*,\s*|\s+and\s+|\s*\)?))+)",
    re.IGNORECASE,
)
_FIELD_BEFORE = re.compile(r"\b(?:an?|the)\s+[`'\"]?(\w+)[`'\"]?\s+(?:field|key|property)\b", re.IGNORECASE)


def asks_json(task: Task) -> bool:
    return task.format_type != "text" or bool(_ASKS_JSON.search(task.instruction))


def schema_in_prompt(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text` that looks like a JSON schema."""
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict) and ("properties" in value or value.get("type") in ("object", "array")):
            return value
    return None


def named_fields(text: str) -> list[str]:
    names: list[str] = [m.group(1) for m in _FIELD_BEFORE.finditer(text)]
    for match in _FIELDS.finditer(text):
        names += [
            n.strip("`'\"") for n in re.split(r"\s*,\s*|\s+and\s+", match.group(1)) if n.strip("`'\" )")
        ]
    return [n.strip("`'\" )") for n in dict.fromkeys(names) if n.strip("`'\" )").isidentifier()]


def _question(task: Task) -> Task:
    """The request with the JSON ask taken out, for the inner answer."""
    user = re.sub(r"[^.?!\n]*\bjson\b[^.?!\n]*[.?!\n]?", " ", task.user, flags=re.IGNORECASE)
    user = re.sub(r"\{.*\}", " ", user, flags=re.DOTALL)
    user = re.sub(r"\bjson\b", " ", user, flags=re.IGNORECASE).strip()  # never asks again: no loop
    return Task(system="", user=user, conversation=f"{task.conversation}\x1ejson", seed=task.seed)


class Filler:
    """Fills a schema with values that fit it and, where it can tell, mean something."""

    def __init__(self, task: Task, model: Profile, solve: Solver) -> None:
        self.task = task
        self.model = model
        self.solve = solve
        self.question = _question(task)
        self.subject = self.question.user or task.user
        self._inner: Answer | None = None

    @property
    def inner(self) -> Answer:
        if self._inner is None:
            self._inner = self.solve(self.question, self.model)
        return self._inner

    def value(self, schema: Any, name: str = "", depth: int = 0) -> Any:
        if not isinstance(schema, dict) or depth > MAX_DEPTH:
            return self.string({}, name)
        schema = schema_clean(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.choice(schema["enum"], name)
        for key in ("allOf", "anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                merged = dict(schema[key][0]) if key != "allOf" else _merge(schema[key])
                return self.value(merged, name, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
            return self.object(schema, depth)
        if kind == "array":
            low = int(schema.get("minItems", 1))
            high = int(schema.get("maxItems", max(low, 3)))
            count = max(low, min(high, 1 if low <= 1 else low))
            return [self.value(schema.get("items"), name, depth + 1) for _ in range(count)]
        if kind in ("integer", "number"):
            return self.number(schema, name, integer=kind == "integer")
        if kind == "boolean":
            return draw(self.model, self.task, f"bool:{name}") < 0.7
        if kind == "null":
            return None
        return self.string(schema, name)

    def object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        found = schema.get("properties")
        properties: dict[str, Any] = found if isinstance(found, dict) else {}
        out = {name: self.value(sub, name, depth + 1) for name, sub in properties.items()}
        for name in schema.get("required") or []:
            if isinstance(name, str) and name not in out:
                out[name] = self.string({}, name)
        return out

    def choice(self, options: list[Any], name: str) -> Any:
        labels = [str(o) for o in options]
        if all(isinstance(o, str) for o in options) and len(options) > 1:
            right = classification.best_label(labels, self.subject)
            if errs(self.model, self.task, "json"):
                others = [o for o in labels if o != right]
                right = others[int(draw(self.model, self.task, f"enum:{name}") * len(others))]
            return options[labels.index(right)]
        return options[0]

    def number(self, schema: dict[str, Any], name: str, *, integer: bool) -> float | int:
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        key = self.inner.key if name in ("answer", "result", "value", "total") else None
        try:
            value: float = float(key) if key is not None else 0.0
        except ValueError:
            value = 0.0
        if key is None:
            spread = draw(self.model, self.task, f"num:{name}")
            if low is not None and high is not None:
                value = float(low) + (float(high) - float(low)) * (0.5 + spread / 2)
            elif re.search(r"score|confidence|probability", name):
                value = round(0.6 + 0.39 * spread, 2)
            else:
                value = 1 + round(9 * spread)
        if low is not None:
            value = max(value, float(low) + (1 if "exclusiveMinimum" in schema and integer else 0))
        if high is not None:
            value = min(value, float(high) - (1 if "exclusiveMaximum" in schema and integer else 0))
        if schema.get("exclusiveMinimum") is not None and value <= float(schema["exclusiveMinimum"]):
            value = float(schema["exclusiveMinimum"]) + (1 if integer else 0.01)
        if schema.get("exclusiveMaximum") is not None and value >= float(schema["exclusiveMaximum"]):
            value = float(schema["exclusiveMaximum"]) - (1 if integer else 0.01)
        return int(round(value)) if integer else round(value, 4)

    def string(self, schema: dict[str, Any], name: str) -> str:
        fmt = schema.get("format")
        if fmt == "email":
            return "someone@example.com"
        if fmt == "date":
            return "2025-01-15"
        if fmt == "date-time":
            return "2025-01-15T09:30:00Z"
        if fmt in ("uri", "url"):
            return "https://example.com/"
        lowered = name.lower()
        if re.search(r"summary|tldr|abstract", lowered):
            text = summarisation.summarise(self.subject)
        elif re.search(r"answer|result|value|output|response", lowered) or not lowered:
            text = self.inner.key or self.inner.text
        elif re.search(r"reason|explanation|rationale|why", lowered):
            text = (
                self.inner.text if self.inner.key else f"It is about {topic(self.subject) or 'the question'}."
            )
        elif re.search(r"topic|title|subject|name", lowered):
            text = topic(self.subject, words=3) or "general"
        elif re.search(r"language|lang", lowered):
            text = "en"
        else:
            text = topic(self.subject, words=2) or lowered or "value"
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        if len(text) < low:
            text = text + "." * (low - len(text))
        if high is not None:
            text = text[: int(high)]
        return text


NUMERIC_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
COUNT_KEYS = ("minItems", "maxItems", "minLength", "maxLength")
MAX_COUNT = 1000  # a length or item count past this is not one to honour literally
MAX_BOUND = 1e15


def schema_clean(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without the keywords of the wrong type (a bound that is not a number, a count
    that is not a small whole number, `required` that is not a list…), which are ignored:
    whatever a client sends, the answer is JSON and never a crash."""
    clean = dict(schema)
    for key in NUMERIC_KEYS:
        value = clean.get(key)
        if key in clean and not (
            isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < MAX_BOUND
        ):
            del clean[key]
    for key in COUNT_KEYS:
        value = clean.get(key)
        if key in clean and not (
            isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT
        ):
            del clean[key]
    if "required" in clean and not isinstance(clean["required"], list):
        del clean["required"]
    if "format" in clean and not isinstance(clean["format"], str):
        del clean["format"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in clean:
            branches = clean[key]
            kept = [b for b in branches if isinstance(b, dict)] if isinstance(branches, list) else []
            if kept:
                clean[key] = kept
            else:
                del clean[key]
    return clean


def _merge(schemas: list[Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for sub in schemas:
        if isinstance(sub, dict):
            for key, value in sub.items():
                if key == "properties" and isinstance(value, dict):
                    merged.setdefault("properties", {}).update(value)
                elif key == "required" and isinstance(value, list):
                    merged["required"] = list(merged.get("required", [])) + value
                else:
                    merged.setdefault(key, value)
    return merged


def answer(task: Task, model: Profile, solve: Solver) -> Answer | None:
    if not asks_json(task):
        return None
    schema = task.json_schema or schema_in_prompt(task.instruction)
    filler = Filler(task, model, solve)
    if schema is not None:
        value = filler.value(schema)
    else:
        fields = named_fields(task.instruction) or ["answer"]
        value = {name: filler.string({}, name) for name in fields}
    text = json.dumps(value, ensure_ascii=False)
    wrapped = task.format_type == "text" and errs(model, task, "instructions")
    if wrapped:
        text = f"Sure! Here is the JSON you asked for:\n\n```json\n{json.dumps(value, indent=2)}\n```"
    return Answer(text=text, skill="json", correct=not wrapped, notes={"value": value})
