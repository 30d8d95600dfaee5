"""Typed provider options (a Provider's `options` JSON), one schema per kind family.

Each kind's schema is named by its registry entry (`routing.providers.registry.KINDS`);
`routing.schemas` validates with it for the admin and the importer alike.
"""

from pydantic import BaseModel, ConfigDict, Field


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkOptions(Options):
    """Options for providers reached over HTTP."""

    timeout_s: float | None = Field(default=None, gt=0, le=600)
    max_connections: int | None = Field(default=None, ge=1, le=1000)
    default_headers: dict[str, str] = Field(default_factory=dict)
    # Embeddings: the most inputs one request to this provider carries (larger batches are
    # split and joined in order); unset: the kind's own limit (OpenAI 2048, Gemini 100).
    embed_batch_max: int | None = Field(default=None, ge=1, le=10_000)


# The simulated kind keeps its schema in its own package: routing/providers/simulated/options.py.
