"""Named pre- and post-processors for task routes.

A processor takes the text and the route's settings and returns text. A post-processor
that finds the model's answer unusable raises `ProcessorRejected`; the engine treats that
as a model-permanent failure so the route's chain moves on to the next model.
Projects add their own with settings.ORCHESTRATOR["PROCESSORS"] = {"name": "dotted.path"}.
"""

import json
import re
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

Processor = Callable[..., str]


class ProcessorRejected(Exception):
    """The model's output cannot be used (e.g. invalid JSON); try the next model."""


_FENCE = re.compile(r"^\s*```[\w+.-]*[ \t]*\n?(?P<body>.*?)\n?```\s*$", re.DOTALL)


def strip(text: str, **_: object) -> str:
    return text.strip()


def strip_code_fences(text: str, **_: object) -> str:
    """Remove one surrounding Markdown code fence (```sql … ```), leaving the code intact.

    Unlike `str.strip("```sql")`, which strips the characters s, q, l and ` from both ends
    (eating the `l` of a trailing `ORDER BY total`), this removes only a real fence.
    """
    match = _FENCE.match(text)
    if match:
        return match.group("body").strip("\n")
    # A fence in the middle of prose: keep only the first fenced block.
    inner = re.search(r"```[\w+.-]*[ \t]*\n(?P<body>.*?)\n?```", text, re.DOTALL)
    if inner:
        return inner.group("body")
    return text.strip()


def json_processor(text: str, **_: object) -> str:
    """Parse the answer as JSON (a fenced block is allowed) and re-emit it compactly."""
    candidate = strip_code_fences(text)
    try:
        value = json.loads(candidate)
    except json.JSONDecodeError as exc:
        raise ProcessorRejected(
            f"answer is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def first_line(text: str, **_: object) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def label(text: str, *, labels: list[str] | None = None, **_: object) -> str:
    """Match the answer to one of the allowed labels (case-insensitive, punctuation ignored)."""
    answer = re.sub(r"[^\w\s-]", "", first_line(text)).strip().lower()
    if not labels:
        return answer
    by_key = {lab.lower(): lab for lab in labels}
    if answer in by_key:
        return by_key[answer]
    found = [lab for key, lab in by_key.items() if re.search(rf"\b{re.escape(key)}\b", answer)]
    if len(found) == 1:
        return found[0]
    raise ProcessorRejected(f"answer {first_line(text)[:80]!r} matches none of the labels {labels}")


BUILTIN: dict[str, Processor] = {
    "strip": strip,
    "strip_code_fences": strip_code_fences,
    "json": json_processor,
    "first_line": first_line,
    "label": label,
}


@cache
def _registry() -> dict[str, Processor]:
    registry = dict(BUILTIN)
    extra: dict[str, str] = dict(settings.ORCHESTRATOR.get("PROCESSORS", {}))
    for name, dotted in extra.items():
        registry[name] = import_string(dotted)
    return registry


def processor_names() -> set[str]:
    return set(_registry())


def processor_get(name: str) -> Processor:
    try:
        return _registry()[name]
    except KeyError:
        raise KeyError(f"unknown processor {name!r}; known: {', '.join(sorted(_registry()))}") from None
