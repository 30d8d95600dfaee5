"""Reads of routing configuration."""

import difflib
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from routing.engine.breaker import breaker_states
from routing.models import FallbackChain, ModelConfig, PromptVariant, PromptVersion, TaskRoute


def models_with_status() -> QuerySet[ModelConfig]:
    return ModelConfig.objects.select_related("provider").prefetch_related("capabilities").order_by("name")


def routes_overview() -> QuerySet[TaskRoute]:
    """Routes with what they need to be listed: fixed model or capabilities, chain, active prompt."""
    return (
        TaskRoute.objects.select_related("model", "fallback_chain", "active_prompt")
        .prefetch_related("capabilities")
        .order_by("task_type")
    )


def chains_overview() -> QuerySet[FallbackChain]:
    return FallbackChain.objects.prefetch_related("steps__model").order_by("name")


def route_prompt_for(*, route: TaskRoute, model: ModelConfig | None) -> PromptVersion | None:
    """The system prompt a route sends to `model`: its variant for that model, else the route's."""
    if model is not None:
        variant = (
            PromptVariant.objects.select_related("active_prompt").filter(route=route, model=model).first()
        )
        if variant is not None:
            return variant.active_prompt
    if route.active_prompt_id is None:
        return None
    return PromptVersion.objects.get(pk=route.active_prompt_id)


@dataclass
class DiffLine:
    kind: str  # "add" | "del" | "ctx" | "hunk"
    text: str


@dataclass
class VersionRow:
    version: PromptVersion
    active: bool
    diff: list[DiffLine]  # against the previous version in the same series (empty for the first)


@dataclass
class PromptSeries:
    """The versions of one prompt: the route's own (model None) or one model's variant."""

    model: ModelConfig | None
    active: PromptVersion | None
    rows: list[VersionRow] = field(default_factory=list)


def prompt_diff(old: str, new: str) -> list[DiffLine]:
    """Line diff of two prompts (plain text: the template escapes it)."""
    lines: list[DiffLine] = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            lines.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            lines.append(DiffLine("add", line[1:]))
        elif line.startswith("-"):
            lines.append(DiffLine("del", line[1:]))
        else:
            lines.append(DiffLine("ctx", line[1:]))
    return lines


def route_prompt_history(*, route: TaskRoute) -> list[PromptSeries]:
    """Every prompt series of a route, newest version first, each with a diff to its predecessor."""
    versions = list(
        PromptVersion.objects.filter(route=route)
        .select_related("model", "created_by")
        .order_by("model__name", "version")
    )
    active_ids = {route.active_prompt_id}
    active_ids.update(PromptVariant.objects.filter(route=route).values_list("active_prompt_id", flat=True))
    by_model: dict[int | None, PromptSeries] = {None: PromptSeries(model=None, active=None)}
    previous: dict[int | None, PromptVersion] = {}
    for version in versions:
        series = by_model.setdefault(version.model_id, PromptSeries(model=version.model, active=None))
        before = previous.get(version.model_id)
        diff = prompt_diff(before.system_prompt, version.system_prompt) if before is not None else []
        is_active = version.pk in active_ids
        if is_active:
            series.active = version
        series.rows.append(VersionRow(version=version, active=is_active, diff=diff))
        previous[version.model_id] = version
    for series in by_model.values():
        series.rows.reverse()
    return list(by_model.values())


def breakers_current(*, scope: str = "") -> dict[str, dict[str, Any]]:
    """Circuit-breaker state of every model that failed lately, in live traffic (scope "") or
    in a drill's own namespace: {name: {state, failures, opened_at}}; absent means closed."""
    return {name: dict(state) for name, state in breaker_states(scope=scope).items()}
