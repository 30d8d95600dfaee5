"""Typed provider options (a Provider's `options` JSON), one schema per kind family.

Each kind's schema is named by its registry entry (`routing.providers.registry.KINDS`);
`routing.schemas` validates with it for the admin and the importer alike.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkOptions(Options):
    """Options for providers reached over HTTP."""

    timeout_s: float | None = Field(default=None, gt=0, le=600)
    max_connections: int | None = Field(default=None, ge=1, le=1000)
    default_headers: dict[str, str] = Field(default_factory=dict)


FailureKind = Literal[
    "transient", "rate_limit", "server_error", "model_permanent", "request_invalid", "hang", "stream_cut"
]


class SimulatedOptions(Options):
    """How a simulated model behaves: latency distribution, failures, deterministic text."""

    latency_ms_mean: float = Field(default=200, ge=0)
    latency_ms_jitter: float = Field(default=50, ge=0)
    ttft_ms: float | None = Field(default=None, ge=0)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    failure_kinds: list[FailureKind] = Field(default_factory=lambda: list[FailureKind](["server_error"]))
    stream_cut_after_tokens: int = Field(default=5, ge=0)
    tokens_per_second: float = Field(default=200, gt=0)
    persona: str = Field(default="", max_length=200)
