"""Everything else: an answer shaped by the kind of question, about the prompt's own topic.

- "A or B?" (should we shard or add replicas?) → picks one, with reasons; the right pick is
  fixed by the prompt, a model errs at its `reasoning` rate by picking the other.
- "Name / list N …" → N items; "haiku" → three lines; "explain / what is / how" → a short
  explanation; "step by step" in the ask → numbered steps.
Wording differs between models (drawn from the model, seed and prompt) and its length follows
the model's `verbosity`.
"""

from __future__ import annotations

import re

from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Answer, Solver, Task, digest, errs, pick, topic

NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "2": 2, "3": 3, "4": 4, "5": 5}
KNOWN_LISTS = {
    "hash map": [
        "Caching results by key (memoisation)",
        "Counting occurrences, e.g. word frequencies",
        "Indexing records by id for O(1) lookups",
        "Removing duplicates by remembering what was seen",
        "Grouping items by a property",
    ],
    "cache": [
        "Cache-aside: read through the cache, fill it on a miss",
        "Write-through: update the cache on every write",
        "Time-based expiry for data that may go stale",
        "Invalidate on change events",
    ],
    "index": [
        "Speed up lookups on filtered columns",
        "Enforce uniqueness",
        "Support ORDER BY without a sort",
        "Cover a query so the table is never read",
    ],
}
_OPENERS = ["", "In short: ", "Briefly: ", "Here is how I see it. ", "Good question. "]
EXPLANATIONS = {
    "connection pool": [
        "A connection pool keeps a set of open connections and lends one to each request.",
        "Opening a connection costs a handshake and authentication, so reusing them saves latency.",
        "When every connection is lent out, new requests wait or fail after a timeout.",
        "Size the pool for peak concurrency, below the server's connection limit.",
        "Connections are checked before reuse so a dropped one is replaced, not handed out.",
    ],
    "circuit breaker": [
        "A circuit breaker stops calling a dependency that keeps failing.",
        "After a number of failures it opens and fails fast instead of waiting for timeouts.",
        "After a cool-down it lets one trial call through (half-open) and closes if it succeeds.",
        "It protects both the caller's latency and the struggling service.",
        "Tune the threshold and the cool-down to the dependency's normal error rate.",
    ],
    "hash map": [
        "A hash map stores values under keys and finds them in constant time on average.",
        "It hashes the key to pick a bucket, then compares keys inside the bucket.",
        "When it fills up, it grows and rehashes every key into a larger table.",
        "A poor hash function puts many keys in one bucket and makes lookups slow.",
        "Keys must be immutable while stored, or they end up in the wrong bucket.",
    ],
    "cache": [
        "A cache keeps recent results close to where they are needed.",
        "A hit skips the slow path; a miss falls through to the source and fills the cache.",
        "Entries expire or are evicted (least recently used first) when space runs out.",
        "The hard part is invalidation: stale data must not outlive its usefulness.",
        "Measure the hit rate: a cache that rarely hits only adds latency.",
    ],
}
EXPLANATIONS["caching"] = EXPLANATIONS["cache"]
_EXPLAIN = re.compile(
    r"^(?:please\s+)?(?:explain|describe|what is|what's|how does)\s+(?:how\s+|what\s+)?(?:an?\s+|the\s+)?"
    r"(.+?)(?:\s+(?:works?|is|does))?\s*[?.!]*$",
    re.IGNORECASE,
)
_REASONS = [
    "it is the cheaper change to make and to undo",
    "it addresses the bottleneck you have today",
    "it keeps the operational burden small",
    "it leaves the other option open for later",
    "it is easier to measure and roll back",
]
_HAIKU = [
    ("{t} waits in the queue", "a single packet hesitates", "then the page appears"),
    ("silent {t} hums", "numbers drift across the screen", "morning light arrives"),
    ("under load, {t}", "every millisecond counted", "the graph settles down"),
]


def answer(task: Task, model: Profile, solve: Solver) -> Answer:
    ask = task.user.strip()
    subject = topic(ask) or "this"
    if re.search(r"\bhaiku\b", ask, re.IGNORECASE):
        about = re.search(r"\babout ([\w\s-]+?)[.?!]?$", ask, re.IGNORECASE)
        lines = pick(model, task, "haiku", _HAIKU)
        word = (about.group(1) if about else subject).strip()
        return Answer(text="\n".join(lines).format(t=word), skill="reasoning")
    choice = _options(ask)
    if choice is not None:
        return _choose(task, model, choice, subject)
    count = re.search(
        r"\b(?:name|list|give(?: me)?|suggest)\s+(two|three|four|five|six|seven|[2-7])\b", ask, re.I
    )
    if count:
        return _list(task, model, NUMBERS[count.group(1).lower()], ask)
    if re.search(r"step by step|steps", task.instruction, re.IGNORECASE):
        return _steps(task, model, subject)
    return _explain(task, model, subject)


def _options(ask: str) -> tuple[str, str] | None:
    match = re.search(
        r"\b(?:should (?:we|i)|is it better to|do (?:we|i))\s+(.+?)\s+or\s+(.+?)(?:\s+first)?\s*\?",
        ask,
        re.IGNORECASE,
    )
    if match is None:
        return None
    return match.group(1).strip(" ,"), match.group(2).strip(" ,")


def _choose(task: Task, model: Profile, options: tuple[str, str], subject: str) -> Answer:
    right = digest("choice", task.user) % 2  # the prompt's own "right" answer, the same for every model
    wrong = errs(model, task, "reasoning")
    chosen = options[1 - right if wrong else right]
    reasons = _REASONS[:]
    start = digest(model.model_id, model.persona, task.seed, task.user) % len(reasons)
    reasons = reasons[start:] + reasons[:start]
    count = {"terse": 1, "normal": 2, "thorough": 3}[model.verbosity]
    lead = f"{chosen[0].upper()}{chosen[1:]} first."
    body = " ".join(f"{'Because' if i == 0 else 'Also,'} {r}." for i, r in enumerate(reasons[:count]))
    text = f"{pick(model, task, 'opener', _OPENERS)}{lead} {body}"
    if model.verbosity == "thorough":
        text += "\n\nRevisit the decision once the load has grown again: measure before the next step."
    return Answer(text=text.strip(), skill="reasoning", key=chosen, correct=not wrong)


def _list(task: Task, model: Profile, n: int, ask: str) -> Answer:
    lowered = ask.lower()
    items = next((v for k, v in KNOWN_LISTS.items() if k in lowered), None)
    subject = (
        topic(re.sub(r"\b(name|list|give|suggest|uses?|ways?|examples?)\b", " ", ask, flags=re.I)) or "it"
    )
    if items is None:
        items = [
            f"Use {subject} where its main strength matters most",
            f"Combine {subject} with what you already run",
            f"Measure {subject} against a simple baseline",
            f"Document how {subject} fails and how to recover",
            f"Automate the checks around {subject}",
            f"Review {subject} after the first month",
            f"Retire {subject} when it stops paying off",
        ]
    start = digest(model.model_id, model.persona, task.seed, ask) % len(items)
    chosen = (items[start:] + items[:start])[:n]
    return Answer(text="\n".join(f"{i}. {item}" for i, item in enumerate(chosen, start=1)), skill="reasoning")


def _steps(task: Task, model: Profile, subject: str) -> Answer:
    steps = [
        f"State what {subject} must achieve and how you will measure it.",
        "List the options and what each costs.",
        "Pick the option that meets the goal with the least risk.",
        "Try it on a small scale and measure.",
        "Roll it out, keeping a way back.",
    ]
    n = {"terse": 3, "normal": 4, "thorough": 5}[model.verbosity]
    text = "\n".join(f"{i}. {s}" for i, s in enumerate(steps[:n], start=1))
    return Answer(text=text, skill="reasoning")


def _explain(task: Task, model: Profile, subject: str) -> Answer:
    asked = _EXPLAIN.match(task.user.strip())
    if asked:
        subject = asked.group(1).strip()
    known = next((v for k, v in EXPLANATIONS.items() if k in task.user.lower()), None)
    ask = " ".join(task.user.split()).rstrip("?.!")
    if not asked and len(ask) <= 120:  # nothing to go on: restate the ask, as models do
        subject = f"“{ask}”" if ask else "this"
    sentences = known or [
        f"{subject[:1].upper()}{subject[1:]} comes down to a few ideas.",
        "The core of it is a clear goal and a measurable result.",
        "Start from the simplest version that works, then refine it where measurements say so.",
        "Watch the edge cases: empty inputs, very large inputs and failures half-way.",
        "Write down the trade-offs so the next person knows why it is the way it is.",
    ]
    n = {"terse": 1, "normal": 3, "thorough": 5}[model.verbosity]
    first, rest = sentences[0], sentences[1:]
    start = digest(model.model_id, model.persona, task.seed, task.user) % len(rest)
    picked = [first, *(rest[start:] + rest[:start])[: n - 1]]
    return Answer(text=pick(model, task, "opener", _OPENERS) + " ".join(picked), skill="reasoning")
