"""The simulated kind's options: latency, failures, and how well each model does each skill.

One schema for the admin form, the YAML importer and the client, named by the kind's entry in
`routing.providers.registry.KINDS` (so `routing.schemas.OPTION_SCHEMAS` has it).

A provider's options apply to every model it serves; `models` overrides them per model id:

    options:
      latency_ms_mean: 300
      skill: 0.9                      # accuracy for every skill not named below
      skills: {math: 0.6, json: 0.8}
      models:
        sim-coder: {skills: {code_generation: 1.0}, verbosity: terse}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from routing.providers.options import Options

__all__ = ["SKILLS", "FailureKind", "ModelOverrides", "Profile", "SimulatedOptions", "Skill", "profile_for"]

FailureKind = Literal[
    "transient", "rate_limit", "server_error", "model_permanent", "request_invalid", "hang", "stream_cut"
]
# What a simulated model can get right or wrong (the names of the capabilities they stand for
# where there is one). `instructions`: format requests ("only the number", "one word", JSON
# without a response_format); `judging`: picking the best answer or a PASS/FAIL verdict.
Skill = Literal[
    "math",
    "knowledge",
    "classification",
    "summarization",
    "code_generation",
    "json",
    "instructions",
    "judging",
    "reasoning",
]
SKILLS: tuple[str, ...] = Skill.__args__  # type: ignore[attr-defined]
Verbosity = Literal["terse", "normal", "thorough"]
Rate = Annotated[float, Field(ge=0, le=1)]


class ModelOverrides(Options):
    """Per-model settings on a provider serving several simulated models (unset: the provider's)."""

    skill: Rate | None = None
    skills: dict[Skill, Rate] = Field(default_factory=dict)
    verbosity: Verbosity | None = None
    persona: str | None = Field(default=None, max_length=200)
    latency_ms_mean: float | None = Field(default=None, ge=0)
    latency_ms_jitter: float | None = Field(default=None, ge=0)
    ttft_ms: float | None = Field(default=None, ge=0)
    tokens_per_second: float | None = Field(default=None, gt=0)
    input_tokens_per_second: float | None = Field(default=None, gt=0)


class SimulatedOptions(Options):
    """How a simulated model behaves: latency, failures, skill rates, style."""

    latency_ms_mean: float = Field(default=200, ge=0)
    latency_ms_jitter: float = Field(default=50, ge=0)
    ttft_ms: float | None = Field(default=None, ge=0)
    tokens_per_second: float = Field(default=200, gt=0)
    input_tokens_per_second: float = Field(default=5000, gt=0)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    failure_kinds: list[FailureKind] = Field(default_factory=lambda: list[FailureKind](["server_error"]))
    stream_cut_after_tokens: int = Field(default=5, ge=0)
    persona: str = Field(default="", max_length=200)
    skill: Rate = 1.0
    skills: dict[Skill, Rate] = Field(default_factory=dict)
    verbosity: Verbosity = "normal"
    models: dict[str, ModelOverrides] = Field(default_factory=dict)


class Profile(Options):
    """One model's resolved settings: the provider's options with its `models` entry applied."""

    model_id: str
    persona: str = ""
    verbosity: Verbosity = "normal"
    skill: float = 1.0
    skills: dict[str, float] = Field(default_factory=dict)
    latency_ms_mean: float = 200
    latency_ms_jitter: float = 50
    ttft_ms: float | None = None
    tokens_per_second: float = 200
    input_tokens_per_second: float = 5000

    def rate(self, skill: str) -> float:
        """How often this model gets `skill` right (0..1)."""
        return self.skills.get(skill, self.skill)

    @property
    def instant(self) -> bool:
        """No latency at all (tests): no first-token wait and no per-token pace either."""
        return not (self.latency_ms_mean or self.latency_ms_jitter or self.ttft_ms)


def profile_for(options: SimulatedOptions, model_id: str) -> Profile:
    own = options.models.get(model_id) or ModelOverrides()
    fields = {
        name: getattr(own, name) if getattr(own, name) is not None else getattr(options, name)
        for name in (
            "persona",
            "verbosity",
            "skill",
            "latency_ms_mean",
            "latency_ms_jitter",
            "ttft_ms",
            "tokens_per_second",
            "input_tokens_per_second",
        )
    }
    skills: dict[str, float] = {str(k): v for k, v in options.skills.items()}
    skills.update((str(k), v) for k, v in own.skills.items())
    return Profile(model_id=model_id, skills=skills, **fields)
