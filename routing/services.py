"""Writes to routing configuration: versioned prompts and ordered chain steps.

Every write that changes routing config records who did it (simple-history's `_history_user`)
so the admin's per-object history answers "who changed what, and when".
"""

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from routing.models import ChainStep, FallbackChain, ModelConfig, PromptVariant, PromptVersion, TaskRoute


def prompt_normalise(text: str) -> str:
    """One spelling per prompt: browsers post CRLF, YAML keeps trailing newlines."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def audit_as(instance: Any, *, user: Any, reason: str) -> None:
    instance._history_user = user if user is not None and user.is_authenticated else None
    instance._change_reason = reason[:100]


def _next_version(*, route: TaskRoute, model: ModelConfig | None) -> int:
    latest = PromptVersion.objects.filter(route=route, model=model).aggregate(n=Max("version"))["n"]
    return (latest or 0) + 1


def _lock_route(route: TaskRoute) -> None:
    """Serialise prompt writes per route (version numbers are max + 1)."""
    list(TaskRoute.objects.select_for_update().filter(pk=route.pk).values_list("pk", flat=True))
    route.refresh_from_db(fields=["active_prompt"])


@transaction.atomic
def route_update_prompt(
    *, route: TaskRoute, system_prompt: str, model: ModelConfig | None = None, user: Any, note: str = ""
) -> PromptVersion | None:
    """Make `system_prompt` the route's active prompt (or its variant for `model`).

    A changed text creates a new immutable PromptVersion; the same text is a no-op. For a
    variant, an empty text removes the variant (the model then gets the route's prompt).
    Returns the active version afterwards (None: no prompt / no variant).
    """
    text = prompt_normalise(system_prompt)
    _lock_route(route)
    if model is None:
        current = route.active_prompt
        if (current.system_prompt if current is not None else "") == text:
            return current
        version = PromptVersion.objects.create(
            route=route,
            model=None,
            version=_next_version(route=route, model=None),
            system_prompt=text,
            note=note[:255],
            created_by=user if user is not None and user.is_authenticated else None,
        )
        route.active_prompt = version
        audit_as(route, user=user, reason=f"Prompt v{version.version}" + (f": {note}" if note else ""))
        route.save(update_fields=["active_prompt", "updated_at"])
        return version

    variant = PromptVariant.objects.select_related("active_prompt").filter(route=route, model=model).first()
    if not text:
        if variant is not None:
            audit_as(variant, user=user, reason="Variant removed")
            variant.delete()
        return None
    if variant is not None and variant.active_prompt.system_prompt == text:
        return variant.active_prompt
    version = PromptVersion.objects.create(
        route=route,
        model=model,
        version=_next_version(route=route, model=model),
        system_prompt=text,
        note=note[:255],
        created_by=user if user is not None and user.is_authenticated else None,
    )
    if variant is None:
        variant = PromptVariant(route=route, model=model, active_prompt=version)
    else:
        variant.active_prompt = version
    audit_as(variant, user=user, reason=f"Prompt v{version.version} for {model.name}")
    variant.save()
    return version


@transaction.atomic
def route_rollback_prompt(*, route: TaskRoute, version: PromptVersion, user: Any) -> PromptVersion:
    """Make an earlier version active again (no new version; the change itself is audited)."""
    if version.route_id != route.pk:
        raise ValidationError(f"Version {version.pk} belongs to another route, not {route.task_type}.")
    _lock_route(route)
    reason = f"Rolled back prompt to v{version.version}"
    if version.model_id is None:
        if route.active_prompt_id != version.pk:
            route.active_prompt = version
            audit_as(route, user=user, reason=reason)
            route.save(update_fields=["active_prompt", "updated_at"])
        return version
    variant = PromptVariant.objects.filter(route=route, model_id=version.model_id).first()
    if variant is None:
        variant = PromptVariant(route=route, model_id=version.model_id, active_prompt=version)
    elif variant.active_prompt_id == version.pk:
        return version
    variant.active_prompt = version
    audit_as(variant, user=user, reason=f"{reason} for {version.model.name if version.model else ''}")
    variant.save()
    return version


StepSpec = tuple[ModelConfig, float | None]


@transaction.atomic
def chain_set_steps(*, chain: FallbackChain, steps: Sequence[StepSpec], user: Any = None) -> bool:
    """Give `chain` exactly these ordered steps; returns whether anything changed.

    Rows are reused by position (0, 1, 2…), so re-ordering never collides with the
    unique (chain, position) constraint and unchanged steps are left alone (no history noise).
    """
    existing = {step.position: step for step in ChainStep.objects.filter(chain=chain)}
    changed = False
    for position, (model, timeout_s) in enumerate(steps):
        step = existing.pop(position, None)
        if step is None:
            step = ChainStep(chain=chain, position=position, model=model, timeout_s=timeout_s)
        elif step.model_id == model.pk and step.timeout_s == timeout_s:
            continue
        else:
            step.model = model
            step.timeout_s = timeout_s
        audit_as(step, user=user, reason=f"Step {position}: {model.name}")
        step.save()
        changed = True
    for step in existing.values():
        audit_as(step, user=user, reason=f"Step {step.position} removed")
        step.delete()
        changed = True
    if changed:
        audit_as(chain, user=user, reason="Steps: " + " → ".join(model.name for model, _ in steps))
        chain.save(update_fields=["updated_at"])
    return changed
