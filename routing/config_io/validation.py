"""Checking a config file: YAML syntax, the schema, duplicates, field rules and references.

Every function returns (or raises with) human-readable problems, each naming the entry and the
field at fault, e.g. "models[3] (gpt-4o): provider 'azure' is not defined".
"""

from typing import Any

import yaml
from django.core.exceptions import ValidationError
from pydantic import ValidationError as SchemaError

from routing.config_io.canon import Canon
from routing.config_io.schema import NAME_KEYS, SECTIONS, ConfigFile
from routing.models import (
    EMBEDDING,
    Capability,
    ChainStep,
    FallbackChain,
    ModelConfig,
    Provider,
    TaskRoute,
    chain_kind_errors,
    route_target_errors,
    slug_validator,
)


class ConfigImportError(Exception):
    """The file was rejected; nothing was written. `errors` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("\n".join(errors))


# --- parsing ---------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (plain YAML keeps the last one
    silently, so a second `models:` section would drop the first without a word)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key: construct_mapping explains that one
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"the key {key!r} is given twice",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_yaml(text: str) -> Any:
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: plain data only
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


def schema_errors(raw: Any, exc: SchemaError) -> list[str]:
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


def duplicate_errors(config: ConfigFile) -> list[str]:
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


def field_errors(config: ConfigFile) -> list[str]:
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
            embedding_dimensions=m.embedding_dimensions,
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


def reference_errors(config: ConfigFile, db: dict[str, dict[str, Canon]]) -> list[str]:
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
    kinds: dict[str, tuple[bool, int | None]] = {
        name: (EMBEDDING in canon["capabilities"], canon.get("embedding_dimensions"))
        for name, canon in db["models"].items()
    }
    kinds.update({m.name: (EMBEDDING in m.capabilities, m.embedding_dimensions) for m in config.models})
    # A chain only in the database must still hold one kind of model after this file's changes.
    file_chains = {c.name for c in config.chains}
    changed = {m.name: i for i, m in enumerate(config.models)}
    for name, canon in sorted(db["chains"].items()):
        names = [step["model"] for step in canon["models"]]
        if name in file_chains or not changed.keys() & set(names):
            continue
        listed = [(n, *kinds[n]) for n in names if n in kinds]
        for message in chain_kind_errors(listed):
            first = min(changed[n] for n in names if n in changed)
            errors.append(
                f"models[{first}] ({config.models[first].name}): chain {name} (in the database): {message}"
            )
    for i, ch in enumerate(config.chains):
        listed = [(s.model, *kinds[s.model]) for s in ch.models if s.model in kinds]
        errors += [f"chains[{i}] ({ch.name}): models: {message}" for message in chain_kind_errors(listed)]
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
