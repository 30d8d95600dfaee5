"""`config_import`: validate a whole YAML config, then upsert it by name in one transaction.

Everything is checked before anything is written (schema, duplicates, references against the
file and the database together, the models' own field rules), and all problems are reported
at once, each naming the entry and the field at fault. The file describes each entry it names
completely (an omitted optional key means its default); entries it does not name are left
alone. Prompts go through `route_update_prompt`, so a new version appears only on change.
"""

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from pydantic import ValidationError as SchemaError

from routing.config_io.canon import (
    Canon,
    chain_entry_canon,
    model_entry_canon,
    provider_entry_canon,
    route_entry_canon,
)
from routing.config_io.exporter import config_snapshot
from routing.config_io.schema import NAME_KEYS, SECTIONS, CapabilityEntry, ConfigFile
from routing.config_io.validation import (
    ConfigImportError,
    duplicate_errors,
    field_errors,
    load_yaml,
    reference_errors,
    schema_errors,
)
from routing.models import Capability, FallbackChain, ModelConfig, Provider, TaskRoute
from routing.services import audit_as, chain_set_steps, route_update_prompt


@dataclass
class PlanItem:
    section: str
    name: str
    action: str  # "create" | "update" | "unchanged"
    changed: list[str] = field(default_factory=list)

    def describe(self) -> str:
        detail = f" ({', '.join(self.changed)})" if self.changed else ""
        return f"{self.section}: {self.name}: {self.action}{detail}"


@dataclass
class ImportReport:
    items: list[PlanItem]
    dry_run: bool

    def count(self, action: str) -> int:
        return sum(1 for item in self.items if item.action == action)

    @property
    def changed(self) -> int:
        return self.count("create") + self.count("update")

    def summary(self) -> str:
        verb = "would be" if self.dry_run else "were"
        text = (
            f"{self.count('create')} {verb} created, {self.count('update')} {verb} updated, "
            f"{self.count('unchanged')} unchanged."
        )
        return text + (" Dry run: nothing was written." if self.dry_run else "")


# --- plan and apply --------------------------------------------------------------------------


def _entry_canons(config: ConfigFile) -> dict[str, dict[str, Canon]]:
    return {
        "providers": {p.name: provider_entry_canon(p) for p in config.providers},
        "capabilities": {c.name: c.model_dump() for c in config.capabilities},
        "models": {m.name: model_entry_canon(m) for m in config.models},
        "routes": {r.task_type: route_entry_canon(r) for r in config.routes},
        "chains": {c.name: chain_entry_canon(c) for c in config.chains},
    }


def _referenced_capabilities(config: ConfigFile) -> list[str]:
    slugs = {slug for m in config.models for slug in m.capabilities}
    slugs |= {slug for r in config.routes for slug in r.capabilities}
    return sorted(slugs - {c.name for c in config.capabilities})


def _plan(
    wanted: dict[str, dict[str, Canon]], db: dict[str, dict[str, Canon]], extra_caps: list[str]
) -> list[PlanItem]:
    items = []
    for section in SECTIONS:
        for name, canon in wanted[section].items():
            current = db[section].get(name)
            if current is None:
                items.append(PlanItem(section, name, "create"))
            elif current == canon:
                items.append(PlanItem(section, name, "unchanged"))
            else:
                changed = [key for key in canon if canon[key] != current.get(key)]
                items.append(PlanItem(section, name, "update", changed))
        if section == "capabilities":
            items += [PlanItem(section, slug, "create") for slug in extra_caps if slug not in db[section]]
    return items


def _apply(
    config: ConfigFile, plan: list[PlanItem], wanted: dict[str, dict[str, Canon]], *, user: Any, reason: str
) -> None:
    todo = {(item.section, item.name) for item in plan if item.action != "unchanged"}

    def save(instance: Any) -> None:
        audit_as(instance, user=user, reason=reason)
        instance.save()

    capabilities = {c.slug: c for c in Capability.objects.all()}
    entries = {c.name: c for c in config.capabilities}
    for section, name in sorted(todo):
        if section == "capabilities":
            entry = entries.get(name, CapabilityEntry(name=name))
            capability = capabilities.get(name) or Capability(slug=name)
            capability.description = entry.description
            save(capability)
            capabilities[name] = capability

    providers = {p.name: p for p in Provider.objects.all()}
    for p in config.providers:
        if ("providers", p.name) in todo:
            provider = providers.get(p.name) or Provider(name=p.name)
            canon = wanted["providers"][p.name]
            for key in ("kind", "base_url", "api_key_env", "api_version", "options", "enabled"):
                setattr(provider, key, canon[key])
            save(provider)
            providers[p.name] = provider

    models = {m.name: m for m in ModelConfig.objects.all()}
    for m in config.models:
        if ("models", m.name) in todo:
            model = models.get(m.name) or ModelConfig(name=m.name)
            model.provider = providers[m.provider]
            for key in (
                "model_id",
                "context_window",
                "latency_ms",
                "input_cost_per_1k",
                "output_cost_per_1k",
                "quality_rank",
                "embedding_dimensions",
                "enabled",
            ):
                setattr(model, key, getattr(m, key))
            save(model)
            model.capabilities.set([capabilities[slug] for slug in sorted(set(m.capabilities))])
            models[m.name] = model

    chains = {c.name: c for c in FallbackChain.objects.all()}
    for ch in config.chains:
        if ("chains", ch.name) in todo:
            chain = chains.get(ch.name) or FallbackChain(name=ch.name)
            chain.description = ch.description
            save(chain)
            chains[ch.name] = chain
            chain_set_steps(chain=chain, steps=[(models[s.model], s.timeout_s) for s in ch.models], user=user)

    routes = {r.task_type: r for r in TaskRoute.objects.all()}
    for r in config.routes:
        if ("routes", r.task_type) not in todo:
            continue
        canon = wanted["routes"][r.task_type]
        route = routes.get(r.task_type) or TaskRoute(task_type=r.task_type)
        route.description = r.description
        route.model = models[r.model] if r.model is not None else None
        route.optimize_for = r.optimize_for
        route.fallback_chain = chains[r.fallback_chain] if r.fallback_chain is not None else None
        route.preprocessor = r.preprocessor
        route.postprocessor = r.postprocessor
        route.enabled = r.enabled
        save(route)
        route.capabilities.set([capabilities[slug] for slug in canon["capabilities"]])
        route_update_prompt(route=route, system_prompt=canon["system_prompt"], user=user, note=reason)
        current = set(route.variants.values_list("model__name", flat=True))
        for name in sorted(current | set(canon["prompt_variants"])):
            route_update_prompt(
                route=route,
                model=models[name],
                system_prompt=canon["prompt_variants"].get(name, ""),
                user=user,
                note=reason,
            )


def config_import(*, text: str, dry_run: bool = False, user: Any = None, source: str = "") -> ImportReport:
    """Validate `text` (YAML) completely, then apply it in one transaction (unless `dry_run`).

    Raises ConfigImportError listing every problem; the database is then left as it was.
    """
    raw = load_yaml(text)
    try:
        config = ConfigFile.model_validate(raw)
    except SchemaError as exc:
        raise ConfigImportError(schema_errors(raw, exc)) from exc
    db = {
        section: {entry[NAME_KEYS[section]]: entry for entry in entries}
        for section, entries in config_snapshot().items()
    }
    errors = duplicate_errors(config) + field_errors(config) + reference_errors(config, db)
    if errors:
        raise ConfigImportError(errors)
    wanted = _entry_canons(config)
    plan = _plan(wanted, db, _referenced_capabilities(config))
    if not dry_run:
        reason = f"import_config {source}".strip()[:100]
        with transaction.atomic():
            _apply(config, plan, wanted, user=user, reason=reason)
    return ImportReport(items=plan, dry_run=dry_run)
