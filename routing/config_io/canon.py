"""One canonical dict per config entry, built from the database or from a parsed file.

The importer compares the two to decide create / update / unchanged (so importing the same
file twice changes nothing), and the exporter writes the database's form, minus defaults.
"""

from typing import Any

from routing.config_io.schema import ChainEntry, ModelEntry, ProviderEntry, RouteEntry
from routing.models import Capability, FallbackChain, ModelConfig, PromptVariant, Provider, TaskRoute
from routing.services import prompt_normalise

Canon = dict[str, Any]


def sort_keys(value: Any) -> Any:
    """Options JSON with sorted keys, at every level (PostgreSQL's jsonb reorders them anyway)."""
    if isinstance(value, dict):
        return {key: sort_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sort_keys(item) for item in value]
    return value


def provider_canon(provider: Provider) -> Canon:
    return {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url,
        "api_key_env": provider.api_key_env,
        "api_version": provider.api_version,
        "options": sort_keys(provider.options or {}),
        "enabled": provider.enabled,
    }


def provider_entry_canon(entry: ProviderEntry) -> Canon:
    data = entry.model_dump()
    data["options"] = sort_keys(data["options"])
    return data


def capability_canon(capability: Capability) -> Canon:
    return {"name": capability.slug, "description": capability.description}


def model_canon(model: ModelConfig) -> Canon:
    """Expects `provider` selected and `capabilities` prefetched."""
    return {
        "name": model.name,
        "provider": model.provider.name,
        "model_id": model.model_id,
        "capabilities": sorted(c.slug for c in model.capabilities.all()),
        "context_window": model.context_window,
        "latency_ms": model.latency_ms,
        "input_cost_per_1k": model.input_cost_per_1k,
        "output_cost_per_1k": model.output_cost_per_1k,
        "quality_rank": model.quality_rank,
        "embedding_dimensions": model.embedding_dimensions,
        "enabled": model.enabled,
    }


def model_entry_canon(entry: ModelEntry) -> Canon:
    data = entry.model_dump()
    data["capabilities"] = sorted(set(entry.capabilities))
    return data


def chain_canon(chain: FallbackChain) -> Canon:
    """Expects `steps__model` prefetched."""
    steps = sorted(chain.steps.all(), key=lambda s: s.position)
    return {
        "name": chain.name,
        "description": chain.description,
        "models": [{"model": s.model.name, "timeout_s": s.timeout_s} for s in steps],
    }


def chain_entry_canon(entry: ChainEntry) -> Canon:
    return entry.model_dump()


def route_canon(route: TaskRoute, variants: list[PromptVariant]) -> Canon:
    """Expects `model`, `fallback_chain`, `active_prompt` selected and `capabilities` prefetched."""
    return {
        "task_type": route.task_type,
        "description": route.description,
        "model": route.model.name if route.model is not None else None,
        "capabilities": sorted(c.slug for c in route.capabilities.all()),
        "optimize_for": route.optimize_for,
        "fallback_chain": route.fallback_chain.name if route.fallback_chain is not None else None,
        "system_prompt": route.active_prompt.system_prompt if route.active_prompt is not None else "",
        "prompt_variants": {
            v.model.name: v.active_prompt.system_prompt for v in sorted(variants, key=lambda v: v.model.name)
        },
        "preprocessor": route.preprocessor,
        "postprocessor": route.postprocessor,
        "enabled": route.enabled,
    }


def route_entry_canon(entry: RouteEntry) -> Canon:
    data = entry.model_dump()
    data["capabilities"] = sorted(set(entry.capabilities))
    data["system_prompt"] = prompt_normalise(entry.system_prompt)
    variants = {name: prompt_normalise(text) for name, text in entry.prompt_variants.items()}
    data["prompt_variants"] = {name: variants[name] for name in sorted(variants) if variants[name]}
    return data
