"""Assertions a compare run checks every output against.

Kinds: `equals` and `contains` (against the assertion's value, or the prompt's `expected`
when the value is empty), `regex` (search), `json` (the output parses as JSON), `judge`
(a judge model answers PASS or FAIL with its reason; its call is recorded like any other).

A check is {"kind", "label", "passed", "detail"}: `passed` is True or False, or None when the
assertion does not apply to the row (`equals`/`contains` expected on a row with no expected
value); such a check counts neither as a pass nor as a fail.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

AssertionKind = Literal["equals", "contains", "regex", "json", "judge"]
ASSERTION_KINDS: dict[str, str] = {
    "equals": "Equals",
    "contains": "Contains",
    "regex": "Matches regex",
    "json": "Is valid JSON",
    "judge": "Judge model says pass",
}
MAX_ASSERTIONS = 10


class AssertionSpecError(ValueError):
    pass


@dataclass(frozen=True)
class AssertionSpec:
    kind: str
    value: str = ""
    model: str = ""  # judge only

    @property
    def label(self) -> str:
        if self.kind in ("equals", "contains"):
            return f"{self.kind} {self.value!r}" if self.value else f"{self.kind} expected"
        if self.kind == "regex":
            return f"regex /{self.value}/"
        if self.kind == "judge":
            return f"judge {self.model}"
        return "valid JSON"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def assertions_parse(
    kinds: list[str], values: list[str], models: list[str], *, known_models: set[str]
) -> list[AssertionSpec]:
    """Build specs from the form's parallel lists; raise AssertionSpecError naming the row."""
    specs = []
    for index, kind in enumerate(kinds, start=1):
        kind = (kind or "").strip()
        value = values[index - 1] if index - 1 < len(values) else ""
        model = (models[index - 1] if index - 1 < len(models) else "").strip()
        if not kind:
            continue
        where = f"Assertion {index}"
        if kind not in ASSERTION_KINDS:
            raise AssertionSpecError(f"{where}: unknown kind {kind!r}.")
        if kind == "regex":
            if not value:
                raise AssertionSpecError(f"{where}: give the regular expression.")
            try:
                re.compile(value)
            except re.error as exc:
                raise AssertionSpecError(f"{where}: the regex {value!r} does not compile ({exc}).") from None
        if kind == "judge":
            if not model:
                raise AssertionSpecError(f"{where}: pick the judge model.")
            if model not in known_models:
                raise AssertionSpecError(f"{where}: unknown judge model {model!r}.")
            if not value.strip():
                raise AssertionSpecError(f"{where}: say what the judge should check.")
        specs.append(AssertionSpec(kind=kind, value=value, model=model if kind == "judge" else ""))
    if len(specs) > MAX_ASSERTIONS:
        raise AssertionSpecError(f"At most {MAX_ASSERTIONS} assertions per run.")
    return specs


def spec_from_dict(data: dict[str, Any]) -> AssertionSpec:
    return AssertionSpec(kind=data["kind"], value=data.get("value", ""), model=data.get("model", ""))


def _normalize(text: str) -> str:
    return " ".join(text.split()).casefold()


NOT_APPLICABLE = "not applicable: this row has no expected value"


def check_local(spec: AssertionSpec, *, output: str, expected: str) -> dict[str, Any]:
    """Evaluate a non-judge assertion. Returns {"kind", "label", "passed", "detail"}."""
    target = spec.value or expected
    passed: bool
    detail = ""
    if spec.kind in ("equals", "contains") and not target.strip():
        return {"kind": spec.kind, "label": spec.label, "passed": None, "detail": NOT_APPLICABLE}
    if spec.kind == "equals":
        passed = _normalize(output) == _normalize(target)
        detail = "" if passed else f"expected {target[:200]!r}"
    elif spec.kind == "contains":
        passed = _normalize(target) in _normalize(output)
        detail = "" if passed else f"{target[:200]!r} not found"
    elif spec.kind == "regex":
        passed = re.search(spec.value, output) is not None
        detail = "" if passed else "no match"
    elif spec.kind == "json":
        try:
            json.loads(output)
            passed = True
        except ValueError as exc:
            passed = False
            detail = f"invalid JSON: {exc}"
    else:
        raise ValueError(f"{spec.kind} is not a local assertion")
    return {"kind": spec.kind, "label": spec.label, "passed": passed, "detail": detail}


def check_result(check: dict[str, Any]) -> str:
    """A check's outcome in words: "pass", "fail" or "not_applicable" (CheckResult)."""
    passed = check.get("passed")
    return "not_applicable" if passed is None else ("pass" if passed else "fail")


def checks_passed(checks: list[dict[str, Any]]) -> bool | None:
    """A cell passes when every assertion that applied to it passed; None when none applied."""
    applied = [c["passed"] for c in checks if c.get("passed") is not None]
    return all(applied) if applied else None


JUDGE_SYSTEM = (
    "You grade an answer against a criterion. Reply with PASS or FAIL on the first line, "
    "then one sentence giving your reason."
)


def judge_messages(spec: AssertionSpec, *, prompt: str, output: str, expected: str) -> list[dict[str, str]]:
    parts = [f"Criterion: {spec.value}", f"Question:\n{prompt}"]
    if expected:
        parts.append(f"Reference answer:\n{expected}")
    parts.append(f"Answer to grade:\n{output}")
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def judge_verdict(spec: AssertionSpec, text: str) -> dict[str, Any]:
    """Read PASS / FAIL from the judge's reply; anything else fails with the reply as reason."""
    stripped = text.strip()
    first, _, rest = stripped.partition("\n")
    head = first.strip().strip("*#:. ").upper()
    reason = rest.strip() or first.strip()
    if head.startswith("PASS"):
        passed = True
    elif head.startswith("FAIL"):
        passed = False
    else:
        passed = False
        reason = f"judge gave no PASS/FAIL verdict: {stripped[:300]}"
    return {"kind": "judge", "label": spec.label, "passed": passed, "detail": reason[:500]}
