"""What a model costs: the operator's override, else the bundled genai-prices catalogue.

Offline only: we read the catalogue that ships inside the genai-prices package and never
call its updater (no network). Prices are USD per 1K tokens, as Decimals, exact.

- `model_unit_prices(model)` → (input per 1K, output per 1K, source) with source
  "override" (both override fields set on the ModelConfig), "catalogue" (found by provider
  kind + model id) or "unknown" (None, None): an unknown price is never a silent $0.
- `model_prices(model)` → `UnitPrices`, the same plus the catalogue's cache-read price.
- `call_cost(...)` → the exact Decimal cost of one call, or None when a price is unknown.

Cached prompt tokens: our `Usage.input_tokens` counts every prompt token and
`Usage.cached_tokens` the cache reads among them. When a cache-read price is given (the
catalogue has one for e.g. gpt-4o, claude-3-5-sonnet), cached tokens are charged at it and
the rest at the input price; otherwise every input token is charged at the input price
(overrides have no cache price, so cost errs high, never low). Cache writes (Anthropic) are
charged at the input price, slightly under the catalogue's write premium. Tiered catalogue
prices (e.g. Gemini 1.5 Pro above 128K prompt tokens) use the base tier.

Kinds map to genai-prices providers: openai → openai, azure_openai → azure (the model id
is the deployment name, so this only works when the deployment is named after the model),
anthropic → anthropic, gemini → google. `openai_compatible` (self-hosted) and `simulated`
models have no catalogue price: set an override (zero is a valid price). Embedding models
(an id with "embed", e.g. text-embedding-3-small) have only an input price there: their
output price is 0 (they answer vectors, no tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from routing.providers.registry import KINDS

if TYPE_CHECKING:
    from routing.models import ModelConfig
    from routing.providers.base import Usage

PriceSource = Literal["override", "catalogue", "unknown"]

# Derived from the registry: kind → its provider id in the genai-prices catalogue.
CATALOGUE_PROVIDERS: dict[str, str] = {name: kind.prices for name, kind in KINDS.items() if kind.prices}

_THOUSAND = Decimal(1000)


@dataclass(frozen=True)
class UnitPrices:
    input_per_1k: Decimal | None
    output_per_1k: Decimal | None
    source: PriceSource
    cached_input_per_1k: Decimal | None = None  # None: cached tokens cost the input price

    @property
    def known(self) -> bool:
        return self.input_per_1k is not None and self.output_per_1k is not None

    def as_tuple(self) -> tuple[Decimal | None, Decimal | None, str]:
        return self.input_per_1k, self.output_per_1k, self.source


UNKNOWN = UnitPrices(None, None, "unknown")


def model_unit_prices(model: ModelConfig) -> tuple[Decimal | None, Decimal | None, str]:
    """USD per 1K input and output tokens for `model`, and where they came from.

    Reads `model.provider.kind` (select_related("provider") to avoid a query per model)."""
    return model_prices(model).as_tuple()


def model_prices(model: ModelConfig) -> UnitPrices:
    return unit_prices_for(
        kind=model.provider.kind,
        model_id=model.model_id,
        input_override=model.input_cost_per_1k,
        output_override=model.output_cost_per_1k,
    )


def unit_prices_for(
    *,
    kind: str,
    model_id: str,
    input_override: Decimal | None = None,
    output_override: Decimal | None = None,
) -> UnitPrices:
    """The same as `model_prices`, from plain values (no ORM object needed)."""
    if input_override is not None and output_override is not None:
        return UnitPrices(Decimal(input_override), Decimal(output_override), "override")
    return catalogue_prices(kind, model_id)


@lru_cache(maxsize=1024)
def catalogue_prices(kind: str, model_id: str) -> UnitPrices:
    """The bundled catalogue's prices for a model of a provider kind (cached: it is pure)."""
    provider_id = CATALOGUE_PROVIDERS.get(kind)
    if provider_id is None or not model_id:
        return UNKNOWN
    # Loaded on first use, not at import: importing genai_prices takes ~0.1 s (its catalogue),
    # and every process that imports the engine imports this module.
    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    try:
        _provider, info = snapshot.find_provider_model(model_id, None, provider_id, None)
    except LookupError:
        return UNKNOWN
    prices = _standard_prices(info)
    if prices is None:
        return UNKNOWN
    input_mtok = _base(getattr(prices, "input_mtok", None))
    output_mtok = _base(getattr(prices, "output_mtok", None))
    if input_mtok is not None and output_mtok is None and "embed" in model_id:
        output_mtok = Decimal(0)  # an embedding model: priced per input token, it has no output
    if input_mtok is None or output_mtok is None:
        return UNKNOWN
    cache_read_mtok = _base(getattr(prices, "cache_read_mtok", None))
    return UnitPrices(
        input_per_1k=input_mtok / _THOUSAND,
        output_per_1k=output_mtok / _THOUSAND,
        source="catalogue",
        cached_input_per_1k=cache_read_mtok / _THOUSAND if cache_read_mtok is not None else None,
    )


def _standard_prices(info: Any) -> Any:
    """The catalogue's current standard prices (conditional prices resolved for now)."""
    try:
        return info.get_prices(datetime.now(UTC))
    except Exception:
        prices = info.prices
        if isinstance(prices, list):
            return prices[-1].prices if prices else None
        return prices


def _base(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    base = getattr(value, "base", None)  # TieredPrices
    if isinstance(base, Decimal):
        return base
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def call_cost(
    *,
    input_tokens: int,
    output_tokens: int,
    input_price_per_1k: Decimal | None,
    output_price_per_1k: Decimal | None,
    cached_tokens: int = 0,
    cached_input_price_per_1k: Decimal | None = None,
) -> Decimal | None:
    """Exact USD cost of one call; None when either price is unknown (never a silent 0).

    `input_tokens` includes `cached_tokens`; those are charged at `cached_input_price_per_1k`
    when given, else at the input price."""
    if input_price_per_1k is None or output_price_per_1k is None:
        return None
    cached = min(max(cached_tokens, 0), input_tokens) if cached_input_price_per_1k is not None else 0
    total = Decimal(input_tokens - cached) * input_price_per_1k + Decimal(output_tokens) * output_price_per_1k
    if cached:
        total += Decimal(cached) * cached_input_price_per_1k  # type: ignore[operator]
    return total / _THOUSAND


def usage_cost(prices: UnitPrices, usage: Usage) -> Decimal | None:
    """`call_cost` for a UnitPrices and a Usage."""
    return call_cost(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        input_price_per_1k=prices.input_per_1k,
        output_price_per_1k=prices.output_per_1k,
        cached_tokens=usage.cached_tokens,
        cached_input_price_per_1k=prices.cached_input_per_1k,
    )
