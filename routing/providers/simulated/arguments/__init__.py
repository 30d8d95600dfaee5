"""Tool arguments: a JSON value valid against a tool's parameters, with values from the prompt.

`ArgumentFiller` extends the JSON skill's `Filler` (which knows enums, bounds, formats and the
meaning of fields such as `answer` or `summary`) with values read from the text the call is
about (`textvalues.Source` finds the candidates), chosen by the property's name and description: a city after "in" for a `city`, the number next to "age" or the next unused number for
an integer, a quoted string or the ask itself for a `query`, an email address, a URL, an ISO
date, an upper-case code for a `currency`, an enum value the text names, and values a tool
returned earlier (a `temperature` key in a tool result fills a `temperature` property). Local
`$ref`s (`#/$defs/…`, pydantic's) are resolved; `anyOf` / `oneOf` take the first non-null
branch; optional properties are filled only when the text gives them a value.

After tool results, `said` (the answer quoting them) fills a `summary`, `answer`, `text`….

`found` counts the values read from the primary text (not from fallbacks or defaults), and
`found_required` the required top-level properties among them: a call about one clause of the
prompt ("… and Tokyo") is kept only when the clause gave it a required value of its own.
"""

from __future__ import annotations

import re
from typing import Any

from routing.providers.simulated.arguments.schema import bounded, fits, is_null, merge_all, sized, unique
from routing.providers.simulated.arguments.words import (
    CODE,
    EMAIL,
    EXPRESSION,
    FREE_TEXT,
    FROM,
    LINK,
    MEANINGFUL,
    NUMBER_WORDS,
    PERSON,
    PLACE,
    PLACE_WORDS,
    SAID,
    STREET,
    TO,
)
from routing.providers.simulated.json_schema import MAX_DEPTH, Filler, schema_clean
from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Solver, Task
from routing.providers.simulated.textvalues import (
    CODES,
    DATE_TIMES,
    DATES,
    EMAILS,
    EXPRESSIONS,
    NUMBERS,
    STREETS,
    URLS,
    Source,
    clauses,
    hint_words,
    name_words,
)

__all__ = ["ArgumentFiller", "bounded", "fits"]


class ArgumentFiller(Filler):
    """Fills a tool's parameters from `texts[0]` (then the others, then the schema's defaults)."""

    def __init__(
        self,
        task: Task,
        model: Profile,
        solve: Solver,
        *,
        texts: list[str],
        root: dict[str, Any],
        known: dict[str, Any] | None = None,
        said: str = "",
    ) -> None:
        super().__init__(task, model, solve)
        self.sources = [Source(t) for t in texts if t]
        self.root = root
        self.known = known or {}
        self.said = said
        self.found = 0
        self.found_required = 0  # required top-level properties among them

    # -- structure ---------------------------------------------------------------------------

    def resolve(self, schema: Any, depth: int = 0) -> Any:
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and depth <= MAX_DEPTH:
            target: Any = self.root
            ref = schema["$ref"]
            if not ref.startswith("#"):
                return {k: v for k, v in schema.items() if k != "$ref"}
            for part in ref.lstrip("#").strip("/").split("/") if ref != "#" else []:
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, dict) else None
            if not isinstance(target, dict):
                return {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
            depth += 1
        return schema

    def value(self, schema: Any, name: str = "", depth: int = 0) -> Any:
        schema = self.resolve(schema, depth)
        if not isinstance(schema, dict) or depth > MAX_DEPTH:
            return super().value(schema if isinstance(schema, dict) else {}, name, depth)
        schema = schema_clean(schema)
        if "const" in schema:
            return schema["const"]
        if name and name.lower() in self.known and fits(schema, self.known[name.lower()]):
            self.found += 1
            return self.known[name.lower()]
        for key in ("anyOf", "oneOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                resolved = [self.resolve(b, depth) for b in branches]
                chosen = next((b for b in resolved if not is_null(b)), resolved[0])
                rest = {k: v for k, v in schema.items() if k not in (key, "default")}
                return self.value({**rest, **chosen} if isinstance(chosen, dict) else chosen, name, depth + 1)
        if isinstance(schema.get("allOf"), list) and schema["allOf"]:
            parts = [self.resolve(s, depth) for s in schema["allOf"]]
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            return self.value(merge_all([rest, *parts]), name, depth + 1)
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.enum(schema, name)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, name, depth)
        if kind in ("integer", "number"):
            return self.number(schema, name, integer=kind == "integer")
        if kind == "boolean":
            return self.boolean(schema, name)
        if kind == "null":
            return None
        return self.string(schema, name)

    def object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        found = schema.get("properties")
        properties: dict[str, Any] = found if isinstance(found, dict) else {}
        listed = schema.get("required")
        required = [n for n in listed if isinstance(n, str)] if isinstance(listed, list) else []
        out: dict[str, Any] = {}
        for name, sub in properties.items():
            before = self.found
            value = self.value(sub, name, depth + 1)
            if name in required or self.found > before or MEANINGFUL.search(name.lower()):
                out[name] = value
            if depth == 0 and name in required and self.found > before:
                self.found_required += 1
        for name in required:
            if name not in out:
                out[name] = self.string({}, name)
        return out

    def array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, 8)))
        if isinstance(schema.get("prefixItems"), list):
            return [self.value(s, name, depth + 1) for s in schema["prefixItems"]]
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        values: list[Any] = []
        if depth < 4 and self.sources and high > 1:
            values = self.items_per_clause(items, name, depth)
        if not values:
            count = max(low, 1) if depth < 4 else low
            values = [self.value(items, name, depth + 1) for _ in range(count)]
        if schema.get("uniqueItems"):
            values = unique(values)
        while len(values) < low:
            values.append(self.value(items, name, depth + 1))
        return values[:high]

    def items_per_clause(self, items: Any, name: str, depth: int) -> list[Any]:
        """One item per clause of the text that gives the item a value ("Paris and Tokyo")."""
        found: list[Any] = []
        for clause in clauses(self.sources[0].text):
            sub = ArgumentFiller(self.task, self.model, self.solve, texts=[clause], root=self.root)
            value = sub.value(items, name, depth + 1)
            if sub.found and value not in found:
                found.append(value)
        if len(found) < 2:
            return []
        self.found += 1
        return found

    # -- values ------------------------------------------------------------------------------

    def enum(self, schema: dict[str, Any], name: str) -> Any:
        options = schema["enum"]
        for source in self.sources:
            for option in options:
                spoken = str(option).replace("_", " ")
                if re.search(rf"(?<!\w){re.escape(spoken)}(?!\w)", source.text, re.IGNORECASE):
                    self.found += source is self.sources[0]
                    return option
        if "default" in schema and schema["default"] in options:
            return schema["default"]
        return self.choice(options, name)

    def boolean(self, schema: dict[str, Any], name: str) -> bool:
        words = [w for w in name_words(name) if w not in ("is", "include", "use", "with", "has", "enable")]
        for source in self.sources[:1]:
            for word in words:
                hit = re.search(rf"(\w+\s+)?\b{re.escape(word)}", source.text, re.IGNORECASE)
                if hit:
                    self.found += 1
                    negated = (hit.group(1) or "").strip().lower() in (
                        "no",
                        "not",
                        "without",
                        "don't",
                        "never",
                    )
                    return not negated
        default = schema.get("default")
        return default if isinstance(default, bool) else False

    def number(self, schema: dict[str, Any], name: str, *, integer: bool) -> float | int:
        picked = (
            None if name.lower() in ("answer", "result", "value", "total") else self._number(schema, name)
        )
        if picked is None:
            default = schema.get("default")
            if isinstance(default, int | float) and not isinstance(default, bool):
                return default
            picked = super().number(schema, name, integer=integer)
        return bounded(schema, picked, integer=integer)

    def _number(self, schema: dict[str, Any], name: str) -> float | None:
        hints = hint_words(schema, name)
        nearby = set().union(*(NUMBER_WORDS.get(w, set()) for w in hints), hints)
        for index, source in enumerate(self.sources):
            numbers = source.matches(NUMBERS)
            free = [(pos, n) for pos, n in numbers if ("number", str(pos)) not in source.used]
            if not free:
                continue
            chosen = free[0]
            for pos, text in free:
                around = source.text[max(0, pos - 24) : pos + len(text) + 24].lower()
                if set(re.findall(r"[a-z$€£]+", around)) & nearby:
                    chosen = (pos, text)
                    break
            source.used.add(("number", str(chosen[0])))
            self.found += index == 0
            return float(chosen[1])
        return None

    def string(self, schema: dict[str, Any], name: str) -> str:
        if self.said and SAID.search(name.lower()):  # after tool results: what they returned
            return sized(schema, self.said)
        for index, source in enumerate(self.sources):
            text = self._string(source, schema, name)
            if text is not None:
                self.found += index == 0
                return sized(schema, text)
        default = schema.get("default")
        if isinstance(default, str):
            return default
        if self.sources and (
            set(name_words(name)) & FREE_TEXT or hint_words(schema, name) & {"query", "search"}
        ):
            text, quoted = self.sources[0].ask()
            self.found += quoted
            return sized(schema, text)
        return super().string(schema, name)

    def _string(self, source: Source, schema: dict[str, Any], name: str) -> str | None:
        hints = hint_words(schema, name)
        words = set(name_words(name))
        fmt = schema.get("format")
        direction = FROM if words & FROM else TO if words & TO else None
        if fmt == "email" or hints & EMAIL:
            email = source.take("email", source.matches(EMAILS), direction)
            if email or fmt == "email":
                return email
        if fmt in ("uri", "url") or words & LINK:
            link = source.take("url", source.matches(URLS))
            if link or fmt in ("uri", "url"):
                return link
        if fmt == "date-time":
            return source.take("datetime", source.matches(DATE_TIMES))
        if fmt == "date" or words & {"date", "day"}:
            date = source.take("date", source.matches(DATES))
            if date or fmt == "date":
                return date
        if words & EXPRESSION:
            expression = source.take("expr", [(p, e.strip()) for p, e in source.matches(EXPRESSIONS)])
            if expression:
                return expression
        if hints & CODE:
            code = source.take("code", source.matches(CODES), direction)
            if code:
                return code
        if words & STREET:
            street = source.take("street", source.matches(STREETS))
            if street:
                source.used.update(("name", n) for _, n in source.names() if n in street)
                return street
        if hints & PLACE or (direction and not words & PERSON):
            candidates = source.names()
            if words & {"country", "nation"}:
                candidates = sorted([*candidates, *source.matches(CODES)])
            place = source.take("name", candidates, direction or {"in", "at", "for", "near", "of"})
            if place:
                return place
        if words & PERSON:
            person = source.take("name", source.names(), avoid=PLACE_WORDS)
            if person:
                parts = person.split()
                if "first" in words:
                    return parts[0]
                if "last" in words:
                    return parts[-1]
                return person
        return None
