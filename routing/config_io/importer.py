"""`config_import`: validate a whole YAML config, then upsert it by name in one transaction.

Everything is checked before anything is written (schema, duplicates, references against the
file and the database together, the models' own field rules), and all problems are reported
at once, each naming the entry and the field at fault. The file describes each entry it names
completely (an omitted optional key means its default); entries it does not name are left
alone. Prompts go through `route_update_prompt`, so a new version appears only on change.
"""

from dataclasses import dataclass, field
from typing import Any

import yaml
from django.core.exceptions import ValidationError
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
from routing.models import (
    Capability,
    ChainStep,
    FallbackChain,
    ModelConfig,
    Provider,
    TaskRoute,
    route_target_errors,
    slug_validator,
)
from routing.services import audit_as, chain_set_steps, route_update_prompt


class ConfigImportError(Exception):
    """The file was rejected; nothing was written. `errors` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


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


# --- parsing ---------------------------------------------------------------------------------


def _load_yaml(text: str) -> Any:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigImportError([f"Invalid YAML{where}: {problem}."]) from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigImportError(
            [f"The file must be a mapping with the sections {', '.join(SECTIONS)}; got {type(raw).__name__}."]
        )
    return raw


def _label(raw: Any, section: str, index: int) -> str:
    try:
        entry = raw[section][index]
    except (KeyError, IndexError, TypeError):
        return ""
    if isinstance(entry, dict):
        name = entry.get(NAME_KEYS[section])
        if isinstance(name, str):
            return f" ({name})"
    if isinstance(entry, str):
        return f" ({entry})"
    return ""


def _where(section: str, index: int, label: str, path: tuple[Any, ...] = ()) -> str:
    text = f"{section}[{index}]{label}"
    if path:
        text += ": " + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text


def _schema_errors(raw: Any, exc: SchemaError) -> list[str]:
    messages = []
    for err in exc.errors():
        loc = err["loc"]
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see docs/configuration.md)"
        if not loc:
            messages.append(msg)
        elif len(loc) == 1:
            if err["type"] == "extra_forbidden":
                msg = f"unknown section (expected one of: {', '.join(SECTIONS)})"
            messages.append(f"{loc[0]}: {msg}")
        elif isinstance(loc[1], int):
            section, index = str(loc[0]), loc[1]
            messages.append(f"{_where(section, index, _label(raw, section, index), loc[2:])}: {msg}")
        else:
            messages.append(f"{'.'.join(str(p) for p in loc)}: {msg}")
    return messages


# --- checks ----------------------------------------------------------------------------------


def _duplicate_errors(config: ConfigFile) -> list[str]:
    errors = []
    for section in SECTIONS:
        seen: dict[str, int] = {}
        for index, entry in enumerate(getattr(config, section)):
            name = getattr(entry, NAME_KEYS[section])
            if name in seen:
                errors.append(
                    f"{section}[{index}] ({name}): duplicate {NAME_KEYS[section]}: "
                    f"{section}[{seen[name]}] already uses it"
                )
            else:
                seen[name] = index
    return errors


def _django_errors(where: str, instance: Any, exclude: list[str], key_names: dict[str, str]) -> list[str]:
    try:
        instance.full_clean(exclude=exclude, validate_unique=False)
    except ValidationError as exc:
        out: list[str] = []
        for field_name, messages in exc.message_dict.items():
            prefix = "" if field_name == "__all__" else f"{key_names.get(field_name, field_name)}: "
            out.extend(f"{where}: {prefix}{message}" for message in messages)
        return out
    return []


def _field_errors(config: ConfigFile) -> list[str]:
    """The models' own rules (regexes, price pairs, provider options, processors), per entry."""
    errors: list[str] = []
    for i, p in enumerate(config.providers):
        instance = Provider(
            name=p.name,
            kind=p.kind,
            base_url=p.base_url,
            api_key_env=p.api_key_env,
            api_version=p.api_version,
            options=p.options,
            enabled=p.enabled,
        )
        errors += _django_errors(f"providers[{i}] ({p.name})", instance, [], {})
    for i, c in enumerate(config.capabilities):
        errors += _django_errors(
            f"capabilities[{i}] ({c.name})",
            Capability(slug=c.name, description=c.description),
            [],
            {"slug": "name"},
        )
    for i, m in enumerate(config.models):
        model = ModelConfig(
            name=m.name,
            model_id=m.model_id,
            context_window=m.context_window,
            latency_ms=m.latency_ms,
            input_cost_per_1k=m.input_cost_per_1k,
            output_cost_per_1k=m.output_cost_per_1k,
            quality_rank=m.quality_rank,
            enabled=m.enabled,
        )
        where = f"models[{i}] ({m.name})"
        errors += _django_errors(where, model, ["provider"], {})
        errors += _slug_errors(f"{where}: capabilities", m.capabilities)
    for i, ch in enumerate(config.chains):
        where = f"chains[{i}] ({ch.name})"
        errors += _django_errors(where, FallbackChain(name=ch.name, description=ch.description), [], {})
        for j, step in enumerate(ch.models):
            errors += _django_errors(
                f"{where}: models[{j}]",
                ChainStep(timeout_s=step.timeout_s),
                ["chain", "model", "position"],
                {},
            )
    for i, r in enumerate(config.routes):
        where = f"routes[{i}] ({r.task_type})"
        route = TaskRoute(
            task_type=r.task_type,
            description=r.description,
            optimize_for=r.optimize_for,
            preprocessor=r.preprocessor,
            postprocessor=r.postprocessor,
            enabled=r.enabled,
        )
        errors += _django_errors(where, route, ["model", "fallback_chain", "active_prompt"], {})
        errors += _slug_errors(f"{where}: capabilities", r.capabilities)
    return errors


def _slug_errors(where: str, slugs: list[str]) -> list[str]:
    errors = []
    for slug in slugs:
        try:
            slug_validator(slug)
        except ValidationError as exc:
            errors.append(f"{where}: {slug!r}: {' '.join(exc.messages)}")
    return errors


def _reference_errors(config: ConfigFile, db: dict[str, dict[str, Canon]]) -> list[str]:
    """References resolve against the file and the database together (the state after import)."""
    errors: list[str] = []
    providers = set(db["providers"]) | {p.name for p in config.providers}
    enabled = {name: canon["enabled"] for name, canon in db["models"].items()}
    enabled.update({m.name: m.enabled for m in config.models})
    chains = set(db["chains"]) | {c.name for c in config.chains}

    def model_problem(name: str) -> str | None:
        if name not in enabled:
            return f"model {name!r} is not defined (add it under models)"
        if not enabled[name]:
            return f"model {name!r} is disabled: enable it or pick another model"
        return None

    for i, m in enumerate(config.models):
        if m.provider not in providers:
            known = ", ".join(sorted(providers)) or "none yet"
            errors.append(
                f"models[{i}] ({m.name}): provider {m.provider!r} is not defined "
                f"(add it under providers; known: {known})"
            )
    for i, ch in enumerate(config.chains):
        seen: set[str] = set()
        for j, step in enumerate(ch.models):
            problem = model_problem(step.model)
            if problem:
                errors.append(f"chains[{i}] ({ch.name}): models[{j}]: {problem}")
            if step.model in seen:
                errors.append(
                    f"chains[{i}] ({ch.name}): models[{j}]: {step.model!r} is already in this chain"
                )
            seen.add(step.model)
    for i, r in enumerate(config.routes):
        where = f"routes[{i}] ({r.task_type})"
        if r.model is not None:
            problem = model_problem(r.model)
            if problem:
                errors.append(f"{where}: model: {problem}")
        if r.fallback_chain is not None and r.fallback_chain not in chains:
            errors.append(
                f"{where}: fallback_chain: chain {r.fallback_chain!r} is not defined (add it under chains)"
            )
        for name in r.prompt_variants:
            if name not in enabled:
                errors.append(f"{where}: prompt_variants: model {name!r} is not defined")
        targets = route_target_errors(has_model=r.model is not None, capability_count=len(r.capabilities))
        errors += [f"{where}: {message}" for message in targets]

    # Chains and routes only in the database must not end up using a model this file disables.
    in_file_chains = {c.name for c in config.chains}
    in_file_routes = {r.task_type for r in config.routes}
    users: dict[str, list[str]] = {}
    for name, canon in db["chains"].items():
        if name not in in_file_chains:
            for step in canon["models"]:
                users.setdefault(step["model"], []).append(f"chain {name}")
    for name, canon in db["routes"].items():
        if name not in in_file_routes and canon["model"]:
            users.setdefault(canon["model"], []).append(f"route {name}")
    for i, m in enumerate(config.models):
        if not m.enabled and users.get(m.name):
            errors.append(
                f"models[{i}] ({m.name}): enabled: {m.name} is used by {', '.join(users[m.name])} "
                "(in the database): remove it there first, or keep it enabled"
            )
    return errors


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
    raw = _load_yaml(text)
    try:
        config = ConfigFile.model_validate(raw)
    except SchemaError as exc:
        raise ConfigImportError(_schema_errors(raw, exc)) from exc
    db = {
        section: {entry[NAME_KEYS[section]]: entry for entry in entries}
        for section, entries in config_snapshot().items()
    }
    errors = _duplicate_errors(config) + _field_errors(config) + _reference_errors(config, db)
    if errors:
        raise ConfigImportError(errors)
    wanted = _entry_canons(config)
    plan = _plan(wanted, db, _referenced_capabilities(config))
    if not dry_run:
        reason = f"import_config {source}".strip()[:100]
        with transaction.atomic():
            _apply(config, plan, wanted, user=user, reason=reason)
    return ImportReport(items=plan, dry_run=dry_run)
