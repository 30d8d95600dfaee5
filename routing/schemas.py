"""Typed JSON config: provider options, validated in one place for the admin and the importer."""

from pydantic import ValidationError

from routing.providers.options import NetworkOptions, Options
from routing.providers.registry import KINDS
from routing.providers.simulated.options import FailureKind, SimulatedOptions

__all__ = ["OPTION_SCHEMAS", "FailureKind", "NetworkOptions", "Options", "SimulatedOptions"]

# Derived from the one registry entry per kind.
OPTION_SCHEMAS: dict[str, type[Options]] = {name: kind.options for name, kind in KINDS.items()}


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


def provider_options_parse(kind: str, options: dict) -> Options:
    return OPTION_SCHEMAS[kind].model_validate(options)
