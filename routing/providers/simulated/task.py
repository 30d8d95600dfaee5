"""What a skill module reads (a Task), what it returns (an Answer), and the seeded draws.

Every choice a simulated model makes comes from `draw(model, task, salt)`: a hash of the
request's seed, the model id (and persona), a salt naming the choice and the prompt. The same model, seed
and prompt always give the same answer; another model or seed may not.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from routing.providers.simulated.options import Profile

T = TypeVar("T")

WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_STOPWORDS = """a an the and or but if of to in on at by for with from into onto about as is are was were
be been being it its this that these those there their they them we our you your i me my he she
his her not no do does did done so than then too very can could should would will shall may might
must have has had just also more most less least some any all each every what which who whom whose
when where why how please give tell write make use using only one two three per via up down out
over under again further once here both few other such own same don now"""
STOPWORDS = frozenset(_STOPWORDS.split())


@dataclass(frozen=True)
class Task:
    """The request as the skill modules see it."""

    system: str  # the system messages, joined
    user: str  # the last user message
    conversation: str  # every message as "role: text", for hashing
    seed: int = 0
    format_type: str = "text"  # text | json_object | json_schema
    json_schema: dict[str, Any] | None = None

    @property
    def instruction(self) -> str:
        """System prompt and user message together: where the asks are."""
        return f"{self.system}\n{self.user}".strip()

    def with_user(self, user: str, *, system: str | None = None) -> Task:
        """The same request about another text (a judge re-asking the question)."""
        return Task(
            system=self.system if system is None else system,
            user=user,
            conversation=f"{self.conversation}\x1e{user}",
            seed=self.seed,
        )


@dataclass
class Answer:
    text: str
    skill: str = "reasoning"
    key: str | None = None  # the short canonical value ("391", "billing", "Paris") when there is one
    correct: bool | None = None  # whether the model got it right (None: nothing to get right)
    notes: dict[str, Any] = field(default_factory=dict)


Solver = Callable[[Task, Profile], Answer]


def task_from_messages(messages: Sequence[dict[str, Any]], *, seed: int | None = None, **fmt: Any) -> Task:
    system = "\n".join(content_text(m.get("content")) for m in messages if m.get("role") == "system")
    users = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]
    if not users:  # a conversation of assistant turns only: answer the last message
        users = [content_text(messages[-1].get("content"))] if messages else [""]
    conversation = "\n".join(f"{m.get('role', '')}: {content_text(m.get('content'))}" for m in messages)
    return Task(system=system, user=users[-1], conversation=conversation, seed=seed or 0, **fmt)


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def digest(*parts: object) -> int:
    raw = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(raw[:8], "big")


def draw(model: Profile, task: Task, salt: str) -> float:
    """A number in [0, 1) fixed by (seed, model, salt, prompt)."""
    return digest(task.seed, model.model_id, model.persona, salt, task.conversation) / 2**64


def errs(model: Profile, task: Task, skill: str) -> bool:
    """Whether `model` gets this task's `skill` wrong (at the rate its options set)."""
    return draw(model, task, f"err:{skill}") >= model.rate(skill)


def pick(model: Profile, task: Task, salt: str, choices: Sequence[T]) -> T:
    return choices[int(draw(model, task, salt) * len(choices))]


def content_words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text) if w.lower() not in STOPWORDS and len(w) > 2]


def sentences(text: str) -> list[str]:
    """Sentences of a text, each with its end punctuation."""
    flat = " ".join(text.split())
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", flat)
    return [p.strip() for p in parts if p.strip()]


def topic(text: str, *, words: int = 4) -> str:
    """A few content words of `text`, in order, as a topic phrase."""
    seen: list[str] = []
    for word in content_words(text):
        if word not in seen:
            seen.append(word)
    return " ".join(seen[:words])
