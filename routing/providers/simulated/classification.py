"""Classification: exactly one of the labels the prompt lists, chosen by the words of the input.

Labels are read from "categories: a, b, c", "one of a, b or c", "labels: …", or a bullet list
after such a line. Each label scores the input's words that match it or the small lexicon
below; the best score is the right label, and a model errs at its `classification` rate by
picking another one. With no labels listed, the lexicon's own names are the labels.
"""

from __future__ import annotations

import re

from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Answer, Solver, Task, content_words, errs, pick

LEXICON: dict[str, set[str]] = {
    "billing": {
        "invoice",
        "payment",
        "charge",
        "charged",
        "refund",
        "overdue",
        "price",
        "bill",
        "card",
        "paid",
    },
    "shipping": {"parcel", "package", "delivery", "arrived", "tracking", "shipped", "courier", "late"},
    "technical": {"error", "crash", "bug", "login", "password", "broken", "slow", "app", "page", "500"},
    "account": {"account", "email", "username", "profile", "delete", "close", "signup", "subscription"},
    "feedback": {"great", "thanks", "love", "awesome", "suggest", "feature", "wish", "idea"},
    "positive": {"great", "good", "love", "excellent", "thanks", "happy", "awesome", "best", "fast"},
    "negative": {
        "bad",
        "terrible",
        "never",
        "broken",
        "broke",
        "angry",
        "worst",
        "slow",
        "late",
        "refund",
        "overdue",
        "hate",
        "awful",
        "crash",
        "crashes",
        "failed",
        "worse",
        "disappointed",
        "useless",
    },
    "neutral": {"okay", "fine", "average", "question", "wondering"},
    "spam": {"winner", "free", "prize", "click", "offer", "urgent", "lottery", "crypto"},
    "urgent": {"urgent", "asap", "immediately", "down", "outage", "critical", "now"},
    "question": {"how", "what", "why", "when", "where", "can", "could"},
    "complaint": {"never", "broken", "late", "refund", "disappointed", "bad", "angry"},
    "sports": {"match", "goal", "team", "league", "score", "season", "player"},
    "politics": {"election", "minister", "parliament", "vote", "government", "policy"},
    "technology": {"software", "chip", "ai", "startup", "cloud", "app", "device"},
    "business": {"revenue", "profit", "market", "shares", "quarter", "earnings", "merger"},
}
DEFAULT_LABELS = ["billing", "shipping", "technical", "account", "feedback"]
_CUE = re.compile(r"\b(classif\w*|categori[sz]\w*|label\w*|sentiment)\b", re.IGNORECASE)
_LIST = re.compile(
    r"(?:categories|labels|classes|one of(?: the following)?|choose from|options|\bas|\binto|\beither)"
    r"\s*(?:are|is)?\s*[:\-]?\s*([^\n]+)",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*(.+?)\s*$")


def labels_in(text: str) -> list[str]:
    """The labels `text` lists (in its order), or []."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _LIST.search(line)
        while match is not None:
            found = _listed(match, lines[index + 1 :])
            if found:
                return found
            match = _LIST.search(line, match.start(1))  # "into one category. Categories: a, b"
    return []


def _listed(match: re.Match[str], following: list[str]) -> list[str]:
    tail = match.group(1).strip()
    if not tail.rstrip(".: "):  # "Categories:" then a bullet list
        bullets = []
        for follow in following:
            bullet = _BULLET.match(follow)
            if not bullet:
                break
            bullets.append(bullet.group(1).strip(" .`'\""))
        return bullets if len(bullets) >= 2 else []
    tail = re.split(r"(?<=[a-z\"'`)])\.(?:\s|$)", tail)[0]
    tail = tail.rsplit(":", 1)[-1]  # "into exactly one category: a, b, c"
    parts = re.split(r"\s*(?:,|\bor\b|\band\b|/|\|)\s*", tail)
    found = [p.strip(" .`'\"()") for p in parts if p.strip(" .`'\"()")]
    found = [p for p in found if len(p.split()) <= 3]
    return list(dict.fromkeys(found)) if len(found) >= 2 else []


def is_classification(task: Task) -> bool:
    return bool(_CUE.search(task.instruction)) and not re.search(
        r"\b(summari[sz]e|translate|write|review)\b", task.user, re.IGNORECASE
    )


def scores(labels: list[str], text: str) -> list[int]:
    words = content_words(text) + re.findall(r"\b\d{3}\b", text)
    result = []
    for label in labels:
        name = label.lower()
        stems = {w[:5] for w in content_words(name)} or {name[:5]}
        related = LEXICON.get(name, set())
        result.append(sum(2 if w[:5] in stems else 1 if w in related else 0 for w in words))
    return result


def best_label(labels: list[str], text: str) -> str:
    marks = scores(labels, text)
    if max(marks) == 0:
        fallback = [lab for lab in labels if lab.lower() in ("other", "general", "neutral", "none")]
        return fallback[0] if fallback else labels[0]
    return labels[marks.index(max(marks))]


def _subject(task: Task, labels: list[str]) -> str:
    """What to classify: the user message, without a label-listing instruction in it."""
    text = task.user
    for marker in ("Text:", "Input:", "Message:", "Ticket:", "Review:"):
        if marker.lower() in text.lower():
            return text[text.lower().rindex(marker.lower()) + len(marker) :]
    if labels_in(text):
        kept = [line for line in text.splitlines() if not _LIST.search(line) and not _BULLET.match(line)]
        text = "\n".join(kept) or text
    return text


def answer(task: Task, model: Profile, solve: Solver) -> Answer | None:
    if not is_classification(task):
        return None
    labels = labels_in(task.system) or labels_in(task.user) or DEFAULT_LABELS
    right = best_label(labels, _subject(task, labels))
    wrong = len(labels) > 1 and errs(model, task, "classification")
    shown = pick(model, task, "label-slip", [lab for lab in labels if lab != right]) if wrong else right
    return Answer(text=shown, skill="classification", key=shown, correct=not wrong, notes={"labels": labels})
