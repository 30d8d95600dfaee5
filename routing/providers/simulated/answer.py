"""Which skill answers a request: the first module in SKILLS that recognises it.

Each skill module has `answer(task, model, solve) -> Answer | None` (None: not mine); `solve`
is `simulated_answer` itself, for modules that answer a question inside the request (a judge
re-asking the question, a JSON `answer` field). Adding a skill is one module and one line
here.
"""

from __future__ import annotations

from collections.abc import Callable

from routing.providers.simulated import (
    arithmetic,
    chat,
    classification,
    code,
    facts,
    formatting,
    json_schema,
    judge,
    summarisation,
)
from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Answer, Solver, Task

Skill = Callable[[Task, Profile, Solver], "Answer | None"]

# Order matters: a judge prompt mentions JSON, a JSON ask may hold a classification, …
SKILLS: list[Skill] = [
    judge.answer,
    json_schema.answer,
    code.answer,
    classification.answer,
    summarisation.answer,
    arithmetic.answer,
    facts.answer,
]
UNFORMATTED = ("json", "judging", "code_generation")


def simulated_answer(task: Task, model: Profile) -> Answer:
    """The answer `model` gives to `task` (deterministic for the same model, seed and prompt)."""
    for skill in SKILLS:
        found = skill(task, model, simulated_answer)
        if found is not None:
            break
    else:
        found = chat.answer(task, model, simulated_answer)
    if found.skill in UNFORMATTED:
        return found
    return formatting.apply(task, model, found)
