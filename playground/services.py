"""Writes for the playground: runs and their columns, stopping and re-running, arena votes."""

from __future__ import annotations

import hashlib
import random
import uuid
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from playground.models import (
    ColumnStatus,
    PlaygroundColumn,
    PlaygroundRun,
    RunMode,
    Vote,
    Winner,
    new_trace_id,
)
from playground.selectors import VOTES_VERSION_KEY, usable_model_names
from routing.models import Capability, TaskRoute
from routing.selectors import breakers_current


class PlaygroundError(ValueError):
    """A request the playground cannot carry out, with a message for the user."""


@transaction.atomic
def run_create(
    *,
    user: Any,
    mode: str,
    prompt: str,
    system_prompt: str = "",
    temperature: float | None = None,
    max_tokens: int | None = None,
    models: list[str] | None = None,
    route: TaskRoute | None = None,
    chain: str = "",
    aggregator: str = "",
    judge_model: str = "",
    capability: str = "",
    image: str = "",
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
) -> PlaygroundRun:
    """Save a run and one column per answer stream (a model each; one for a route or chain).
    `image` is a data URI and `tools`/`tool_choice` OpenAI's shapes, all checked by the form."""
    models = list(models or [])
    run = PlaygroundRun.objects.create(
        user=user,
        mode=mode,
        prompt=prompt,
        system_prompt=system_prompt,
        image=image,
        tools=list(tools or []),
        tool_choice=tool_choice,
        temperature=temperature,
        max_tokens=max_tokens,
        route=route,
        task_type=route.task_type if route is not None else "",
        chain_name=chain if mode == RunMode.CHAIN else "",
        aggregator=aggregator if mode == RunMode.CONSENSUS else "",
        judge_model=judge_model if mode == RunMode.CONSENSUS else "",
        capability=capability,
        consensus_status=ColumnStatus.PENDING if mode == RunMode.CONSENSUS else "",
    )
    per_model = mode in (RunMode.MODELS, RunMode.CONSENSUS, RunMode.ARENA)
    targets = models if per_model else [""]
    PlaygroundColumn.objects.bulk_create(
        [
            PlaygroundColumn(
                run=run,
                position=i,
                target_model=name,
                # Consensus members share the run's trace: the engine runs them as one request.
                trace_id=run.trace_id if mode == RunMode.CONSENSUS else new_trace_id(),
            )
            for i, name in enumerate(targets)
        ]
    )
    return run


def arena_pick_models(
    *,
    capability: str = "",
    route: TaskRoute | None = None,
    model_a: str = "",
    model_b: str = "",
    rng: random.Random | None = None,
) -> tuple[str, str]:
    """Two different usable models, A and B in random order; the chosen ones when given."""
    rng = rng or random.SystemRandom()
    candidates = usable_model_names(capability=capability)
    if route is not None and not capability:
        if route.model is not None:
            candidates = list(dict.fromkeys([route.model.name, *usable_model_names()]))
        else:
            needed = set(route.capabilities.values_list("slug", flat=True))
            if needed:
                candidates = [n for n in candidates if needed <= set(_caps_of(n))]
    chosen = [m for m in (model_a, model_b) if m]
    pool = [n for n in candidates if n not in chosen]
    # A model whose circuit is open would only show an error: leave it out of random draws.
    open_circuits = {name for name, state in breakers_current().items() if state.get("state") == "open"}
    if len([n for n in pool if n not in open_circuits]) >= 2 - len(chosen):
        pool = [n for n in pool if n not in open_circuits]
    while len(chosen) < 2 and pool:
        pick = rng.choice(pool)
        pool.remove(pick)
        chosen.append(pick)
    if len(chosen) < 2:
        about = (
            f" with the capability {capability}"
            if capability
            else (f" for the route {route.task_type}" if route else "")
        )
        raise PlaygroundError(
            f"The arena needs two models that can answer{about}; only {len(chosen)} can. Enable another model or set its key."
        )
    if not (model_a or model_b):
        rng.shuffle(chosen)
    return chosen[0], chosen[1]


def _caps_of(name: str) -> list[str]:
    return list(Capability.objects.filter(models__name=name).values_list("slug", flat=True))


def run_stop(*, run: PlaygroundRun) -> int:
    """Mark every column that has not finished as cancelled. Streams still open are cancelled
    by their own connection closing (the engine records the cancelled call)."""
    now = timezone.now()
    n = PlaygroundColumn.objects.filter(
        run=run, status__in=[ColumnStatus.PENDING, ColumnStatus.STREAMING]
    ).update(status=ColumnStatus.CANCELLED, finished_at=now, error="Stopped by the user.")
    if run.consensus_status in (ColumnStatus.PENDING, ColumnStatus.STREAMING):
        PlaygroundRun.objects.filter(pk=run.pk).update(consensus_status=ColumnStatus.CANCELLED)
    return n


def column_reset(*, column: PlaygroundColumn) -> PlaygroundColumn:
    """Re-run one column: clear its answer and give it a new trace (the old records stay)."""
    column.status = ColumnStatus.PENDING
    column.text = ""
    column.error = ""
    column.error_class = ""
    column.answered_by = ""
    column.ttft_ms = column.latency_ms = None
    column.input_tokens = column.output_tokens = None
    column.cost_usd = None
    column.attempts = []
    column.tool_calls = []
    column.trace_id = uuid.uuid4().hex
    column.started_at = column.finished_at = None
    column.save()
    return column


def _votes_changed() -> None:
    cache.set(VOTES_VERSION_KEY, uuid.uuid4().hex, None)


def vote_pair_key(
    *,
    source: str,
    run_id: int | None,
    prompt: str,
    model_a: str,
    model_b: str,
    task_type: str,
    capability: str,
) -> str:
    """What a vote is about when the caller names no pair: the same question put to the same
    two models in the same place (round, route, capability), in either order."""
    parts = [source, str(run_id or ""), task_type, capability, *sorted((model_a, model_b)), prompt]
    return f"{source[:16]}:{hashlib.sha256(chr(0).join(parts).encode('utf-8', 'replace')).hexdigest()[:64]}"


def vote_create(
    *,
    user: Any,
    prompt: str,
    model_a: str,
    model_b: str,
    winner: str,
    capability: str = "",
    task_type: str = "",
    source: str = "arena",
    run: PlaygroundRun | None = None,
    pair: str = "",
) -> Vote:
    """Store a preference between two models' answers; ratings and quality scores follow.

    winner: "a" | "b" | "tie" | "both_bad". Raises PlaygroundError on a bad value.
    A signed-in user has one vote per pair of answers (`pair`, or vote_pair_key's default):
    voting again on the same pair replaces the earlier vote, so repeating a post counts once.
    """
    if winner not in Winner.values:
        raise PlaygroundError(f"Unknown vote {winner!r}: use one of {', '.join(Winner.values)}.")
    if not model_a or not model_b or model_a == model_b:
        raise PlaygroundError("A vote compares two different models.")
    fields: dict[str, Any] = {
        "prompt": prompt,
        "model_a": model_a,
        "model_b": model_b,
        "winner": winner,
        "capability": capability or "",
        "task_type": task_type or "",
        "source": source,
        "run": run,
    }
    pair = (pair or vote_pair_key(
        source=source, run_id=run.pk if run else None, prompt=prompt, model_a=model_a, model_b=model_b,
        task_type=fields["task_type"], capability=fields["capability"],
    ))[:100]  # fmt: skip
    voter = user if getattr(user, "is_authenticated", False) else None
    if voter is None:
        vote = Vote.objects.create(user=None, pair=pair, **fields)
    else:
        # The unique (user, pair) constraint settles concurrent posts; update_or_create retries
        # the read when its insert loses that race, so the last vote wins and none is counted twice.
        with transaction.atomic():
            vote, created = Vote.objects.update_or_create(user=voter, pair=pair, defaults=fields)
            if not created:
                Vote.objects.filter(pk=vote.pk).update(created_at=timezone.now())
    # New version now, and again once committed (so no reader caches the pre-commit view).
    _votes_changed()
    transaction.on_commit(_votes_changed)
    return vote
