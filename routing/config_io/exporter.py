"""`config_export`: the database's routing config as YAML (stable: same config, same bytes).

Entries are sorted by name, lists where order means nothing are sorted, chain order is kept,
keys come in a fixed order and defaults are left out. Secrets are never written: providers
carry only the NAME of their key variable.
"""

from collections import defaultdict
from decimal import Decimal
from typing import Any

import yaml
from django.db.models import Prefetch

from routing.config_io.canon import (
    Canon,
    capability_canon,
    chain_canon,
    model_canon,
    provider_canon,
    route_canon,
)
from routing.models import (
    Capability,
    ChainStep,
    FallbackChain,
    ModelConfig,
    PromptVariant,
    Provider,
    TaskRoute,
)

HEADER = (
    "# Orchestrator routing config (python manage.py export_config).\n"
    "# Load with: python manage.py import_config FILE [--dry-run]. Layout: docs/configuration.md.\n"
    "# No secrets here: api_key_env names the environment variable that holds a provider's key.\n"
)

_OMIT_WHEN: dict[str, dict[str, Any]] = {
    "providers": {"base_url": "", "api_key_env": "", "api_version": "", "options": {}, "enabled": True},
    "capabilities": {"description": ""},
    "models": {
        "input_cost_per_1k": None,
        "output_cost_per_1k": None,
        "quality_rank": None,
        "embedding_dimensions": None,
        "enabled": True,
    },
    "routes": {
        "description": "",
        "model": None,
        "capabilities": [],
        "fallback_chain": None,
        "system_prompt": "",
        "prompt_variants": {},
        "preprocessor": "",
        "postprocessor": "",
        "enabled": True,
    },
    "chains": {"description": ""},
}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _trim(section: str, canon: Canon) -> dict[str, Any]:
    defaults = _OMIT_WHEN[section]
    out: dict[str, Any] = {}
    for key, value in canon.items():
        if key in defaults and value == defaults[key]:
            continue
        if section == "routes" and key == "optimize_for" and value == "cost" and not canon["capabilities"]:
            continue  # Meaningless for a fixed-model route.
        if section == "chains" and key == "models":
            value = [s["model"] if s["timeout_s"] is None else dict(s) for s in value]
        out[key] = _plain(value)
    return out


def config_snapshot() -> dict[str, list[Canon]]:
    """The database's config as canonical entries per section, sorted by name."""
    models = ModelConfig.objects.select_related("provider").prefetch_related("capabilities").order_by("name")
    routes = (
        TaskRoute.objects.select_related("model", "fallback_chain", "active_prompt")
        .prefetch_related("capabilities")
        .order_by("task_type")
    )
    variants: dict[int, list[PromptVariant]] = defaultdict(list)
    for variant in PromptVariant.objects.select_related("model", "active_prompt"):
        variants[variant.route_id].append(variant)
    chains = FallbackChain.objects.prefetch_related(
        Prefetch("steps", queryset=ChainStep.objects.select_related("model"))
    ).order_by("name")
    return {
        "providers": [provider_canon(p) for p in Provider.objects.order_by("name")],
        "capabilities": [capability_canon(c) for c in Capability.objects.order_by("slug")],
        "models": [model_canon(m) for m in models],
        "routes": [route_canon(r, variants[r.pk]) for r in routes],
        "chains": [chain_canon(c) for c in chains],
    }


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line text as `|` literals, lists indented under their key."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def config_export() -> str:
    snapshot = config_snapshot()
    parts = []
    for section, entries in snapshot.items():
        document = {section: [_trim(section, entry) for entry in entries]}
        parts.append(
            yaml.dump(
                document,
                Dumper=_Dumper,
                sort_keys=False,
                allow_unicode=True,
                default_flow_style=False,
                width=100,
            )
        )
    return HEADER + "\n".join(parts)
