"""What a text offers as values for tool arguments: names, numbers, codes, quoted strings.

`Source` holds one text (the user's ask, one clause of it, a tool's result) and hands each
candidate out once: the capitalised phrases ("Paris", "New York", "Ada Lovelace"; a lone word
opening a sentence comes last, a common opener such as "What" never), the numbers, emails,
URLs, ISO dates, upper-case codes, street addresses and arithmetic expressions in it, with a
preference for the one right after a given word ("from", "to", "in") or not right after
another. `clauses` splits an ask into the parts that may each be a call.
"""

from __future__ import annotations

import re
from typing import Any

from routing.providers.simulated.task import STOPWORDS

NUMBERS = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")
EMAILS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URLS = re.compile(r"https?://[^\s\"'<>)]+")
DATE_TIMES = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:Z|[+-]\d{2}:\d{2})?")
DATES = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|(?<!\w)'([^']+)'(?!\w)")
CODES = re.compile(r"\b[A-Z]{2,5}\b")
STREETS = re.compile(
    r"\b\d+[A-Za-z]?\s+(?:[A-Z][\w'-]*\s+)+(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Boulevard|Blvd|Way"
    r"|Drive|Dr|Place|Pl|Square|Sq|Court|Ct|Terrace|Row|Close|Hill|Park)\b\.?"
)
EXPRESSIONS = re.compile(r"[-(]*\d[\d\s.()]*(?:[-+*/^×÷%][\s(]*\d[\d\s.()]*)+")
_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_POSSESSIVE = re.compile(r"(?:'s|’s|['’])$")
_ASK = re.compile(
    r"^(?:(?:please|can you|could you|would you|i want to|i'd like to|help me)\s+)*"
    r"(?:search(?: the web| online| the internet)?|look up|find|google|query|get|fetch|show me|tell me"
    r"|give me)\s+(?:(?:for|about|on)\s+)?",
    re.IGNORECASE,
)

# A capitalised word that starts a sentence is not a name when it is one of these.
STARTERS = {"what", "whats", "tell", "get", "find", "show", "give", "please", "check", "look", "search"}
STARTERS |= {"book", "send", "create", "convert", "calculate", "compute", "extract", "add", "list"}
STARTERS |= {"fetch", "schedule", "remind", "call", "email", "translate", "summarise", "summarize"}
STARTERS |= {"weather", "hi", "hello", "hey", "thanks", "ok", "okay", "now", "also", "then", "set"}
STARTERS |= {"write", "draft", "make", "plan", "note", "i", "i'm", "im", "let's", "lets", "use"}


def name_words(name: str) -> list[str]:
    """`maxResults` / `max_results` / `max-results` → ["max", "results"]."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return [w.lower() for w in re.split(r"[\s_\-.]+", spaced) if w]


def hint_words(schema: dict[str, Any], name: str) -> set[str]:
    """What a property is about: the words of its name, title and description."""
    words = set(name_words(name))
    for key in ("title", "description"):
        if isinstance(schema.get(key), str):
            words |= {w.lower() for w in re.findall(r"[A-Za-z]+", schema[key])}
    return words


class Source:
    """One text's candidate values, each handed out once."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.used: set[tuple[str, str]] = set()
        self._names: list[tuple[int, str]] | None = None

    def take(
        self,
        kind: str,
        candidates: list[tuple[int, str]],
        direction: set[str] | None = None,
        *,
        avoid: set[str] | None = None,
    ) -> str | None:
        """The first candidate not handed out yet: preferably one right after a `direction`
        word ("from", "to"), else preferably not right after an `avoid` word."""
        free = [(pos, value) for pos, value in candidates if (kind, value) not in self.used]
        if not free:
            return None
        chosen = free[0]
        if avoid:
            chosen = next((c for c in free if not self._preceded_by(c[0], avoid)), chosen)
        if direction:
            after = [c for c in free if self._preceded_by(c[0], direction)]
            if after:
                chosen = after[0]
        self.used.add((kind, chosen[1]))
        return chosen[1]

    def _preceded_by(self, pos: int, words: set[str]) -> bool:
        before = re.findall(r"[A-Za-z]+", self.text[max(0, pos - 20) : pos])
        return bool(before) and before[-1].lower() in words

    def matches(self, pattern: re.Pattern[str]) -> list[tuple[int, str]]:
        return [(m.start(), m.group(0).rstrip(".,;:!?")) for m in pattern.finditer(self.text)]

    def quoted(self) -> list[tuple[int, str]]:
        return [(m.start(), next(g for g in m.groups() if g)) for m in _QUOTED.finditer(self.text)]

    def names(self) -> list[tuple[int, str]]:
        """Capitalised phrases ("Paris", "New York", "Ada Lovelace"), not words opening a sentence."""
        if self._names is None:
            runs: list[list[re.Match[str]]] = []
            for match in _WORD.finditer(self.text):
                word = match.group(0)
                capital = word[0].isupper() and word != "I" and not (len(word) > 1 and word.isupper())
                if not capital or self._starts_sentence(match):
                    if runs and runs[-1]:
                        runs.append([])
                    continue
                if runs and runs[-1] and self.text[runs[-1][-1].end() : match.start()] == " ":
                    runs[-1].append(match)
                else:
                    runs.append([match])
            found = [
                (run[0].start(), _POSSESSIVE.sub("", self.text[run[0].start() : run[-1].end()]))
                for run in runs
                if run
            ]
            # One capitalised word opening a sentence ("High priority…") may be no name at all:
            # it comes after the others.
            self._names = sorted(found, key=lambda c: (" " not in c[1] and self._opens(c[0]), c[0]))
        return self._names

    def _opens(self, pos: int) -> bool:
        before = self.text[:pos].rstrip()
        return not before or before[-1] in '.!?:\n"“'

    def _starts_sentence(self, match: re.Match[str]) -> bool:
        word = _POSSESSIVE.sub("", match.group(0)).lower().replace("'", "").replace("’", "")
        if word not in STARTERS and word not in STOPWORDS:
            return False
        return self._opens(match.start())

    def ask(self) -> tuple[str, bool]:
        """The text as a search query (without "please search the web for" and end punctuation),
        and whether it was quoted (a value the text gives, not the text itself)."""
        quoted = self.quoted()
        if quoted:
            return quoted[0][1], True
        stripped = _ASK.sub("", " ".join(self.text.split())).strip(" ?.!")
        return stripped or self.text.strip(), False


def clauses(text: str) -> list[str]:
    """The parts of an ask that may each be a call: "weather in Paris and Tokyo" → two."""
    parts = re.split(r"\s*(?:[;,]|\band\b|\balso\b|\bthen\b|\bplus\b|&|\bas well as\b)\s*", text, flags=re.I)
    return [p for p in (part.strip(" .?!") for part in parts) if p]
