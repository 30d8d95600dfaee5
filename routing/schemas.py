"""Typed JSON config: provider options, validated in one place for the admin and the importer."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkOptions(_Options):
    """Options for providers reached over HTTP."""

    timeout_s: float | None = Field(default=None, gt=0, le=600)
    max_connections: int | None = Field(default=None, ge=1, le=1000)
    default_headers: dict[str, str] = Field(default_factory=dict)


FailureKind = Literal[
    "transient", "rate_limit", "server_error", "model_permanent", "request_invalid", "hang", "stream_cut"
]


class SimulatedOptions(_Options):
    """How a simulated model behaves: latency distribution, failures, deterministic text."""

    latency_ms_mean: float = Field(default=200, ge=0)
    latency_ms_jitter: float = Field(default=50, ge=0)
    ttft_ms: float | None = Field(default=None, ge=0)
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    failure_kinds: list[FailureKind] = Field(default_factory=lambda: list[FailureKind](["server_error"]))
    stream_cut_after_tokens: int = Field(default=5, ge=0)
    tokens_per_second: float = Field(default=200, gt=0)
    persona: str = Field(default="", max_length=200)


OPTION_SCHEMAS: dict[str, type[_Options]] = {
    "openai": NetworkOptions,
    "azure_openai": NetworkOptions,
    "anthropic": NetworkOptions,
    "gemini": NetworkOptions,
    "openai_compatible": NetworkOptions,
    "simulated": SimulatedOptions,
}


def provider_options_errors(kind: str, options: object) -> list[str]:
    """Return human-readable problems with `options` for a provider of `kind` (empty: valid)."""
    schema = OPTION_SCHEMAS.get(kind)
    if schema is None:
        return [f"Unknown provider kind {kind!r}."]
    if not isinstance(options, dict):
        return ["Options must be a mapping (JSON object)."]
    try:
        schema.model_validate(options)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}" for err in exc.errors()]
    return []


def provider_options_parse(kind: str, options: dict) -> _Options:
    return OPTION_SCHEMAS[kind].model_validate(options)
