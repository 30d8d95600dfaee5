"""Format asks applied to an answer: "only the number", "one word", "uppercase", "at most N words".

A model that errs at its `instructions` rate ignores the ask and chats around a short answer
("Sure! The answer is 391."), as small models do.
"""

from __future__ import annotations

import re

from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Answer, Task, errs, pick

_KEY_ONLY = re.compile(
    r"\b(?:only|just)\s+(?:the\s+|a\s+|one\s+)?(?:final\s+)?(?:number|answer|result|value|category|label|name|word)"
    r"|\b(?:number|answer|category|label|name) only\b|\bone word\b|\bsingle word\b|\bnothing else\b",
    re.IGNORECASE,
)
_UPPER = re.compile(r"\b(upper ?case|all caps|in capitals|capital letters)\b", re.IGNORECASE)
_LOWER = re.compile(r"\blower ?case\b", re.IGNORECASE)
_MAX_WORDS = re.compile(
    r"\b(?:in|at most|no more than|under|within|maximum of|max)\s+(\d+)\s+words\b(?:\s+or\s+(?:fewer|less))?",
    re.IGNORECASE,
)
_CHATTY = [
    "Sure! The answer is {}.",
    "Great question. It's {}.",
    "I think the answer is {}.",
    "{} — hope that helps!",
]


def apply(task: Task, model: Profile, answer: Answer) -> Answer:
    instruction = task.instruction
    asks = {
        "key": answer.key is not None and bool(_KEY_ONLY.search(instruction)),
        "upper": bool(_UPPER.search(instruction)),
        "lower": bool(_LOWER.search(instruction)),
        "words": _MAX_WORDS.search(instruction),
    }
    if not any(asks.values()):
        return answer
    if errs(model, task, "instructions"):
        if answer.key is not None and asks["key"]:
            answer.text = pick(model, task, "chatty", _CHATTY).format(answer.key)
        answer.notes["ignored_format"] = True
        return answer
    text = answer.text
    if asks["key"] and answer.key is not None:
        text = answer.key
    match = asks["words"]
    if isinstance(match, re.Match):
        limit = max(1, int(match.group(1)))
        words = text.split()
        if len(words) > limit:
            text = " ".join(words[:limit]).rstrip(",;:") + "."
    if asks["upper"]:
        text = text.upper()
    elif asks["lower"]:
        text = text.lower()
    answer.text = text
    return answer
