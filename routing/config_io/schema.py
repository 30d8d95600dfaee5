"""The YAML layout, as pydantic models: the single schema the importer validates against.

Types are strict (a quoted "8192" is not a number, "yes" is not a boolean) except prices,
which accept any number and become Decimals. Cross-references (a model's provider, a
route's model) and field rules (regexes, price pairs, provider options) are checked by the
importer after this, against the file and the database together.
"""

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from routing.providers.registry import KINDS

if TYPE_CHECKING:
    ProviderKindName = str
else:  # the registered kinds (one registry entry each), checked like any Literal
    ProviderKindName = Literal[tuple(KINDS)]
OptimizeForName = Literal["cost", "latency", "quality"]
Price = Annotated[Decimal, Field(strict=False)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ProviderEntry(_Entry):
    name: str
    kind: ProviderKindName
    base_url: str = ""
    api_key_env: str = ""
    api_version: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True

    @field_validator("api_version", mode="before")
    @classmethod
    def _unquoted_date(cls, value: Any) -> Any:
        """YAML reads an unquoted 2024-10-21 as a date; it is meant as text."""
        if isinstance(value, date):
            return value.isoformat()
        return value


class CapabilityEntry(_Entry):
    name: str
    description: str = ""


class ModelEntry(_Entry):
    name: str
    provider: str
    model_id: str
    capabilities: list[str] = Field(default_factory=list)
    context_window: int
    latency_ms: int = 1000
    input_cost_per_1k: Price | None = None
    output_cost_per_1k: Price | None = None
    quality_rank: int | None = None
    embedding_dimensions: int | None = None  # embedding models: their vector size
    enabled: bool = True


class StepEntry(_Entry):
    model: str
    timeout_s: float | None = None


class ChainEntry(_Entry):
    name: str
    description: str = ""
    models: list[StepEntry] = Field(min_length=1)

    @field_validator("models", mode="before")
    @classmethod
    def _names_are_steps(cls, value: Any) -> Any:
        """`models` may list plain names or {model, timeout_s}."""
        if isinstance(value, list):
            return [{"model": item} if isinstance(item, str) else item for item in value]
        return value


class RouteEntry(_Entry):
    task_type: str
    description: str = ""
    model: str | None = None
    capabilities: list[str] = Field(default_factory=list)
    optimize_for: OptimizeForName = "cost"
    fallback_chain: str | None = None
    system_prompt: str = ""
    prompt_variants: dict[str, str] = Field(default_factory=dict)
    preprocessor: str = ""
    postprocessor: str = ""
    enabled: bool = True


class ConfigFile(_Entry):
    providers: list[ProviderEntry] = Field(default_factory=list)
    capabilities: list[CapabilityEntry] = Field(default_factory=list)
    models: list[ModelEntry] = Field(default_factory=list)
    routes: list[RouteEntry] = Field(default_factory=list)
    chains: list[ChainEntry] = Field(default_factory=list)

    @field_validator("capabilities", mode="before")
    @classmethod
    def _capability_names(cls, value: Any) -> Any:
        """The capabilities section may list plain names or {name, description}."""
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value


SECTIONS = ("providers", "capabilities", "models", "routes", "chains")
# The key that names an entry in each section (used in messages and to upsert).
NAME_KEYS = {
    "providers": "name",
    "capabilities": "name",
    "models": "name",
    "routes": "task_type",
    "chains": "name",
}
