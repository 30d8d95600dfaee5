"""Reads of routing configuration."""

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from routing.engine.breaker import breaker_states
from routing.models import FallbackChain, ModelConfig, PromptVariant, PromptVersion, TaskRoute


def models_with_status() -> QuerySet[ModelConfig]:
    return ModelConfig.objects.select_related("provider").prefetch_related("capabilities").order_by("name")


def routes_overview() -> QuerySet[TaskRoute]:
    """Routes with what they need to be listed: fixed model or capabilities, chain, active prompt,
    and the providers whose keys say whether those models can answer."""
    return (
        TaskRoute.objects.select_related("model__provider", "fallback_chain", "active_prompt")
        .prefetch_related("capabilities", "fallback_chain__steps__model__provider")
        .order_by("task_type")
    )


ANSWERING = ("ready", "simulated")


def route_answer_warnings(*, route: TaskRoute) -> list[str]:
    """Why the models a route names may not be the ones answering: its fixed model or chain
    steps that cannot answer now (no key, disabled), and who answers instead.

    E.g. "gpt-4o-mini cannot answer (needs key: set OPENAI_API_KEY): calls go to chain step 2,
    claude-3.5-sonnet (simulated)." Empty when every named model can answer. A route choosing
    by capabilities names no model, so only its chain is checked."""
    warnings: list[str] = []
    steps = list(route.fallback_chain.steps.all()) if route.fallback_chain else []
    usable = [(n, s.model) for n, s in enumerate(steps, 1) if s.model.status in ANSWERING]
    for n, step in enumerate(steps, 1):
        if step.model.status not in ANSWERING:
            warnings.append(f"Chain step {n}, {step.model.name}, cannot answer ({step.model.status}).")
    if route.model is not None and route.model.status not in ANSWERING:
        if usable:
            n, model = usable[0]
            instead = f": calls go to chain step {n}, {model.name}" + (
                " (simulated)" if model.status == "simulated" else ""
            )
        else:
            instead = " and no chain step can either: every call fails"
        warnings.insert(0, f"{route.model.name} cannot answer ({route.model.status}){instead}.")
    elif steps and not usable and route.model is None:
        warnings.append("No model of its chain can answer: calls fail unless a capable model is ready.")
    return warnings


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
class DiffPiece:
    kind: str  # "same" | "add" | "del" | "gap" (unchanged text left out)
    text: str


@dataclass
class VersionRow:
    version: PromptVersion
    active: bool
    diff: list[DiffPiece]  # against the previous version in the same series (empty for the first)


@dataclass
class PromptSeries:
    """The versions of one prompt: the route's own (model None) or one model's variant."""

    model: ModelConfig | None
    active: PromptVersion | None
    rows: list[VersionRow] = field(default_factory=list)


_TOKENS = re.compile(r"\s+|[^\s]+")
_KEEP = 16  # tokens (words and the spaces between) of unchanged context kept beside a change


Opcode = tuple[str, int, int, int, int]


def _coalesced(opcodes: Sequence[Opcode], a: list[str]) -> list[Opcode]:
    """Changes separated only by white space become one change, so a rewritten sentence reads
    as one deletion and one insertion instead of alternating words."""
    out: list[Opcode] = []
    for index, (op, i1, i2, j1, j2) in enumerate(opcodes):
        between = 0 < index < len(opcodes) - 1
        if op == "equal" and between and all(not t.strip() for t in a[i1:i2]):
            op = "replace"
        if op != "equal" and out and out[-1][0] != "equal":
            _, p1, _, q1, _ = out.pop()
            out.append(("replace", p1, i2, q1, j2))
        else:
            out.append((op, i1, i2, j1, j2))
    return out


def prompt_diff(old: str, new: str) -> list[DiffPiece]:
    """Word diff of two prompts (plain text: the template escapes it), so a one-word edit
    marks that word, not the whole line. Long unchanged runs keep a few words of context
    around each change; the rest is a "gap"."""
    a, b = _TOKENS.findall(old), _TOKENS.findall(new)
    pieces: list[DiffPiece] = []
    opcodes = _coalesced(difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes(), a)
    for index, (op, i1, i2, j1, j2) in enumerate(opcodes):
        if op == "equal":
            run = a[i1:i2]
            first, last = index == 0, index == len(opcodes) - 1
            head = [] if first else run[:_KEEP]  # context after the change before it
            tail = [] if last else run[-_KEEP:]  # context before the change after it
            if len(run) <= len(head) + len(tail) or (first and last):
                pieces.append(DiffPiece("same", "".join(run)))
            else:
                pieces.extend(DiffPiece("same", "".join(part)) for part in (head,) if part)
                pieces.append(DiffPiece("gap", "…"))
                pieces.extend(DiffPiece("same", "".join(part)) for part in (tail,) if part)
            continue
        if i2 > i1:
            pieces.append(DiffPiece("del", "".join(a[i1:i2])))
        if j2 > j1:
            pieces.append(DiffPiece("add", "".join(b[j1:j2])))
    return pieces


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
