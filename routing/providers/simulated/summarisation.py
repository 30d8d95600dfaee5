"""Summarisation: a shorter text built from the input's own sentences (extractive).

A good summary keeps the sentences whose content words recur most in the input (in their
order), about a third of them; a model that errs at its `summarization` rate keeps the
opening sentence and the least telling detail instead. A one-sentence input is cut to its main clause.
The result is always shorter than the input.
"""

from __future__ import annotations

import re
from collections import Counter

from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Answer, Solver, Task, content_words, errs, sentences

_CUE = re.compile(r"\b(summar\w*|tl;?dr|condense|key points|in brief|shorten)\b", re.IGNORECASE)
_LEAD = re.compile(r"^\s*(?:please\s+)?(?:summar\w*|tl;?dr|condense)[^:\n]*[:\n]\s*", re.IGNORECASE)


def source_text(task: Task) -> str:
    """The text to summarise: the user message, without a leading "Summarise this:" ask."""
    text = task.user
    stripped = _LEAD.sub("", text, count=1)
    return stripped if stripped.strip() else text


def summarise(text: str, *, sentences_wanted: int | None = None, lead: bool = False) -> str:
    parts = sentences(text)
    if len(parts) <= 1:
        return _shorten_sentence(text)
    wanted = sentences_wanted or max(1, round(len(parts) / 3))
    wanted = min(wanted, len(parts) - 1)
    counts = Counter(content_words(text))

    def weight(i: int) -> float:
        words = content_words(parts[i])
        opening = 1.25 if i == 0 else 1.0  # openings tend to carry the news
        return opening * sum(counts[w] for w in words) / (len(words) ** 0.5 or 1)

    ranked = sorted(range(len(parts)), key=lambda i: (-weight(i), i))
    if lead:  # a careless summary: the opening, then the least telling detail
        chosen = sorted({0, *ranked[::-1][: max(wanted - 1, 1)]})[: max(wanted, 2)]
    else:
        chosen = sorted(ranked[:wanted])
    return " ".join(parts[i] for i in chosen)


def _shorten_sentence(text: str) -> str:
    flat = " ".join(text.split())
    clauses = re.split(r"\s*(?:[;,—–]|\bwhile\b|\bbut\b|\bwhereas\b|\bbecause\b)\s*", flat)
    main = clauses[0].rstrip(".!?") if clauses and clauses[0] else flat
    words = main.split()
    if len(main) >= len(flat.rstrip(".!?")) or len(words) < 3:
        words = flat.split()[: max(1, len(flat.split()) * 2 // 3)]
        main = " ".join(words).rstrip(",;:")
    return main + "."


def answer(task: Task, model: Profile, solve: Solver) -> Answer | None:
    if not _CUE.search(task.instruction):
        return None
    text = source_text(task)
    if len(text.split()) < 4:
        return None
    wanted = {"terse": 1, "normal": None, "thorough": None}[model.verbosity]
    wrong = errs(model, task, "summarization")
    summary = summarise(text, sentences_wanted=wanted, lead=wrong)
    if len(summary) >= len(text.strip()):  # never longer than what it summarises
        summary = " ".join(text.split()[: max(1, len(text.split()) // 2)]) + "…"
    return Answer(text=summary, skill="summarization", correct=not wrong)
