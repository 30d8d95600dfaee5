"""Judging: pick the best of numbered answers, or grade one answer PASS / FAIL, in the format
the judge prompt asks for.

- Numbered answers ("Answer 1:", "Answer 2:" after a "Question:") with a JSON ask → the
  consensus judge's `{"best": <n>, "reason": "…"}`; without a JSON ask → "Answer <n> is best: …".
- "Reply with PASS or FAIL" (compare assertions) → "PASS" or "FAIL" on the first line, then the
  reason. "Criterion:", "Question:", "Reference answer:" and "Answer to grade:" are read.

The judge answers the question itself (with its own skills) and prefers the answers that
agree with its answer (or with the reference); without a checkable value it prefers the
answer that is most on topic. A judge errs at its `judging` rate by picking another answer
or flipping the verdict.
"""

from __future__ import annotations

import json
import re

from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Answer, Solver, Task, content_words, draw, errs

_NUMBERED = re.compile(r"^Answer (\d+):\s*$", re.MULTILINE)
_PASS_FAIL = re.compile(r"\bPASS\b.{0,20}\bFAIL\b", re.DOTALL)
_SECTION = re.compile(r"^(Criterion|Question|Reference answer|Answer to grade):[ \t]*", re.MULTILINE)


def contains_key(text: str, key: str) -> bool:
    """Whether `key` ("391", "Paris", "billing") appears in `text` as a whole value."""
    if re.fullmatch(r"-?\d+(?:\.\d+)?", key):
        return re.search(rf"(?<![\d.-]){re.escape(key)}(?![\d]|\.\d)", text) is not None
    return re.search(rf"(?<!\w){re.escape(key.lower())}(?!\w)", text.lower()) is not None


def _strip_roles(question: str) -> str:
    return re.sub(r"^(user|assistant):\s*", "", question.strip(), flags=re.MULTILINE).strip()


def overlap(a: str, b: str) -> float:
    ta, tb = set(content_words(a)), set(content_words(b))
    return len(ta & tb) / len(ta | tb) if ta | tb else 0.0


def answer(task: Task, model: Profile, solve: Solver) -> Answer | None:
    instruction = task.instruction
    if _PASS_FAIL.search(task.system or instruction) and "Answer to grade:" in task.user:
        return _verdict(task, model, solve)
    numbered = list(_NUMBERED.finditer(task.user))
    if len(numbered) >= 2 and "Question:" in task.user:
        return _best(task, model, solve, numbered)
    return None


def _sections(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    marks = list(_SECTION.finditer(text))
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out[mark.group(1)] = text[mark.end() : end].strip()
    return out


def _best(task: Task, model: Profile, solve: Solver, numbered: list[re.Match[str]]) -> Answer:
    question = _strip_roles(task.user[task.user.index("Question:") + len("Question:") : numbered[0].start()])
    answers = [
        task.user[m.end() : numbered[i + 1].start() if i + 1 < len(numbered) else len(task.user)].strip()
        for i, m in enumerate(numbered)
    ]
    own = solve(task.with_user(question, system=""), model)
    if own.key:
        scores = [(2.0 if contains_key(a, own.key) else 0.0) + overlap(a, own.text) / 10 for a in answers]
    else:
        scores = [overlap(a, f"{question} {own.text}") + min(len(a.split()), 80) / 400 for a in answers]
    best = max(range(len(answers)), key=lambda i: (scores[i], -i))
    wrong = errs(model, task, "judging")
    if wrong:
        others = [i for i in range(len(answers)) if i != best]
        best = others[int(draw(model, task, "judge-slip") * len(others))]
    if own.key and contains_key(answers[best], own.key):
        reason = f"Answer {best + 1} gives {own.key}, which is correct."
    elif own.key:
        reason = f"Answer {best + 1} is the clearest of the answers."
    else:
        reason = f"Answer {best + 1} is the most complete and stays on the question."
    if re.search(r"\bjson\b|\"best\"", task.instruction, re.IGNORECASE):
        text = json.dumps({"best": best + 1, "reason": reason})
    else:
        text = f"Answer {best + 1} is best. {reason}"
    return Answer(text=text, skill="judging", key=str(best + 1), correct=not wrong)


def _verdict(task: Task, model: Profile, solve: Solver) -> Answer:
    parts = _sections(task.user)
    criterion = parts.get("Criterion", "")
    question = parts.get("Question", "")
    reference = parts.get("Reference answer", "")
    graded = parts.get("Answer to grade", "")
    passed, reason = _grade(
        task, model, solve, criterion=criterion, question=question, reference=reference, graded=graded
    )
    wrong = errs(model, task, "judging")
    if wrong:
        passed = not passed
        reason = "The answer looks right to me." if passed else "The answer does not meet the criterion."
    text = f"{'PASS' if passed else 'FAIL'}\n{reason}"
    return Answer(text=text, skill="judging", key="PASS" if passed else "FAIL", correct=not wrong)


def _grade(
    task: Task, model: Profile, solve: Solver, *, criterion: str, question: str, reference: str, graded: str
) -> tuple[bool, str]:
    if not graded.strip():
        return False, "The answer is empty."
    lowered = criterion.lower()
    if "json" in lowered:
        try:
            json.loads(graded)
        except ValueError:
            return False, "The answer is not valid JSON."
        return True, "The answer is valid JSON."
    if re.search(r"code block|fenced", lowered) and "```" not in graded:
        return False, "The answer has no code block."
    if reference:
        ref = reference.strip()
        if len(ref.split()) <= 5:
            ok = contains_key(graded, ref.rstrip("."))
            return ok, f"The reference answer {ref!r} {'is' if ok else 'is not'} in the answer."
        score = overlap(graded, ref)
        return score >= 0.3, f"Word overlap with the reference answer: {score:.0%}."
    own = solve(task.with_user(question, system=""), model)
    if own.key:
        ok = contains_key(graded, own.key)
        return ok, f"The correct answer is {own.key}; the answer {'gives' if ok else 'does not give'} it."
    score = overlap(graded, f"{question} {own.text}")
    ok = score > 0.05 and len(graded.split()) >= 3
    return ok, "The answer addresses the question." if ok else "The answer does not address the question."
