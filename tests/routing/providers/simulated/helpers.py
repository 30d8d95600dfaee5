"""Ask a simulated model directly (no client, no loop): the skills are plain functions."""

from __future__ import annotations

from typing import Any

from routing.providers.simulated import (
    Answer,
    SimulatedOptions,
    profile_for,
    simulated_answer,
    task_from_messages,
)


def ask(
    user: str, *, system: str = "", model: str = "sim-a", seed: int | None = None, **options: Any
) -> Answer:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user}
    ]
    profile = profile_for(SimulatedOptions.model_validate(options), model)
    return simulated_answer(task_from_messages(messages, seed=seed), profile)
