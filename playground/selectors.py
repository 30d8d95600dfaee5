"""Reads for the playground: what can answer, runs and their history, votes and ratings."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Prefetch, Q, QuerySet

from metrics.selectors.records import trace_records, trace_usage
from playground import ratings
from playground.models import PlaygroundColumn, PlaygroundRun, Vote
from routing.models import (
    EMBEDDING,
    Capability,
    FallbackChain,
    ModelConfig,
    PromptVersion,
    ProviderKind,
    TaskRoute,
)
from routing.pricing import model_unit_prices as engine_prices

logger = logging.getLogger(__name__)
VOTES_VERSION_KEY = "playground:votes-version"
CACHE_SECONDS = 3600


# -- What can answer -------------------------------------------------------------------


@dataclass
class ModelOption:
    model: ModelConfig
    capabilities: list[str]
    input_price: Decimal | None
    output_price: Decimal | None
    price_source: str
    usable: bool
    reason: str  # why it cannot be used ("" when usable)
    simulated: bool

    @property
    def name(self) -> str:
        return self.model.name


@dataclass
class ProviderGroup:
    name: str
    kind_label: str
    status: str
    models: list[ModelOption] = field(default_factory=list)


def model_unit_prices(model: ModelConfig) -> tuple[Decimal | None, Decimal | None, str]:
    """USD per 1K tokens in/out and where the price came from (tolerates a missing catalogue)."""
    try:
        return engine_prices(model)
    except Exception:  # a catalogue problem never breaks the page
        logger.exception("price lookup failed for %s", model.name)
    if model.input_cost_per_1k is not None and model.output_cost_per_1k is not None:
        return model.input_cost_per_1k, model.output_cost_per_1k, "override"
    return None, None, "unknown"


def model_unusable_reason(model: ModelConfig) -> str:
    if not model.enabled:
        return "model disabled"
    if not model.provider.enabled:
        return f"provider {model.provider.name} disabled"
    if model.provider.needs_key:
        return model.provider.key_status
    return ""


def model_options(*, include_disabled: bool = False) -> list[ModelOption]:
    qs = (
        ModelConfig.objects.select_related("provider")
        .prefetch_related("capabilities")
        .order_by("provider__name", "name")
    )
    if not include_disabled:
        qs = qs.filter(enabled=True)
    options = []
    for m in qs:
        low, high, source = model_unit_prices(m)
        capabilities = [c.slug for c in m.capabilities.all()]
        # The playground chats: an embedding model is listed, but cannot be picked.
        reason = model_unusable_reason(m) or ("an embedding model" if EMBEDDING in capabilities else "")
        options.append(
            ModelOption(
                model=m,
                capabilities=capabilities,
                input_price=low,
                output_price=high,
                price_source=source,
                usable=not reason,
                reason=reason,
                simulated=m.provider.kind == ProviderKind.SIMULATED,
            )
        )
    return options


def model_picker() -> list[ProviderGroup]:
    """Enabled models grouped by provider, with prices, capabilities and whether they can answer."""
    groups: dict[str, ProviderGroup] = {}
    for option in model_options():
        provider = option.model.provider
        group = groups.get(provider.name)
        if group is None:
            group = groups[provider.name] = ProviderGroup(
                name=provider.name, kind_label=provider.get_kind_display(), status=provider.key_status
            )
        group.models.append(option)
    return list(groups.values())


def usable_model_names(*, capability: str = "") -> list[str]:
    return [o.name for o in model_options() if o.usable and (not capability or capability in o.capabilities)]


def routes_enabled() -> QuerySet[TaskRoute]:
    return TaskRoute.objects.filter(enabled=True).order_by("task_type")


def chains_all() -> QuerySet[FallbackChain]:
    return FallbackChain.objects.prefetch_related("steps__model").order_by("name")


def context_windows_below(*, names: list[str], tokens: int) -> list[int]:
    """The context windows of the named models that cannot take `tokens`."""
    return list(
        ModelConfig.objects.filter(name__in=names, context_window__lt=tokens).values_list(
            "context_window", flat=True
        )
    )


def capability_slugs() -> list[str]:
    return list(Capability.objects.order_by("slug").values_list("slug", flat=True))


def route_active_prompt(*, route: TaskRoute | None) -> PromptVersion | None:
    if route is None or route.active_prompt_id is None:
        return None
    return PromptVersion.objects.filter(pk=route.active_prompt_id).first()


def estimate_tokens(text: str) -> int:
    """A conservative token estimate (about four characters per token in English)."""
    return math.ceil(len(text) / 4) if text else 0


# -- Runs ------------------------------------------------------------------------------


def run_get(*, run_id: int) -> PlaygroundRun | None:
    return (
        PlaygroundRun.objects.select_related("user", "route")
        .prefetch_related(
            Prefetch("columns", queryset=PlaygroundColumn.objects.order_by("position")), "votes"
        )
        .filter(pk=run_id)
        .first()
    )


def runs_for_history(*, user: Any = None, query: str = "", limit: int = 100) -> list[PlaygroundRun]:
    qs = PlaygroundRun.objects.select_related("user").prefetch_related(
        Prefetch("columns", queryset=PlaygroundColumn.objects.order_by("position")), "votes"
    )
    if user is not None:
        qs = qs.filter(user=user)
    if query:
        qs = qs.filter(Q(prompt__icontains=query) | Q(columns__target_model__icontains=query)).distinct()
    return list(qs.order_by("-created_at", "-id")[:limit])


@dataclass(frozen=True)
class Billed:
    """What a set of call records billed: tokens, and the cost (None when a price is unknown)."""

    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None


def billed(*, trace_id: str, model_name: str = "", role: str = "") -> Billed | None:
    """What the calls of a trace billed (optionally one model's, in one role): a cancelled or
    failed answer still pays for the tokens it used. None when the trace has no records.

    A record without a cost bills nothing when it used no tokens (a failure before the
    answer); with tokens its price is unknown, and so is the total (never understated)."""
    usage = trace_usage(trace_ids=[trace_id], model_name=model_name, role=role)
    if usage is None:
        return None
    return Billed(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost_usd=usage.cost_usd)


def run_call_records(*, run: PlaygroundRun) -> list[Any]:
    """The CallRecords of every attempt the run made (linked by trace id)."""
    trace_ids = {c.trace_id for c in run.columns.all()} | {run.trace_id}
    return list(trace_records(trace_ids=trace_ids))


# -- Votes and ratings ----------------------------------------------------------------


def votes_version() -> str:
    version = cache.get(VOTES_VERSION_KEY)
    if version is None:
        version = uuid.uuid4().hex
        cache.set(VOTES_VERSION_KEY, version, None)
    return version


def _votes(*, capabilities: Iterable[str] | None, task_type: str) -> Any:
    qs = Vote.objects.all()
    if capabilities:
        qs = qs.filter(capability__in=list(capabilities))
    if task_type:
        qs = qs.filter(task_type=task_type)
    return qs.order_by("id")


def vote_tuples(*, capabilities: Iterable[str] | None = None, task_type: str = "") -> list[ratings.VoteTuple]:
    return [
        (a, b, ratings.winner_score(w))
        for a, b, w in _votes(capabilities=capabilities, task_type=task_type).values_list(
            "model_a", "model_b", "winner"
        )
    ]


def leaderboard(*, capability: str = "", task_type: str = "") -> ratings.Leaderboard:
    """Ratings (overall, or for one capability or route), cached until the next vote."""
    key = f"playground:board:{votes_version()}:{capability}:{task_type}"
    board = cache.get(key)
    if board is None:
        rows = list(
            _votes(capabilities=[capability] if capability else None, task_type=task_type).values_list(
                "model_a", "model_b", "winner", "user_id"
            )
        )
        board = ratings.leaderboard(
            [(a, b, ratings.winner_score(w)) for a, b, w, _ in rows], voters=[u for *_, u in rows]
        )
        cache.set(key, board, CACHE_SECONDS)
    return board


def vote_facets() -> dict[str, list[tuple[str, int]]]:
    """Capabilities and routes that have votes, with counts (for the leaderboard's filters)."""
    caps = (
        Vote.objects.exclude(capability="")
        .values("capability")
        .annotate(n=Count("id"))
        .order_by("capability")
    )
    routes = (
        Vote.objects.exclude(task_type="").values("task_type").annotate(n=Count("id")).order_by("task_type")
    )
    return {
        "capabilities": [(r["capability"], r["n"]) for r in caps],
        "routes": [(r["task_type"], r["n"]) for r in routes],
    }


def model_quality_scores(*, capabilities: list[str]) -> dict[str, float]:
    """Measured ratings (higher is better) for models with enough votes in these capabilities.

    Read by the engine for optimize_for="quality" (settings.ORCHESTRATOR["QUALITY_SOURCE"]);
    models below ORCHESTRATOR["RATING_MIN_VOTES"] are absent so the operator's rank applies.
    Cached until the next vote: on the routing path this is two cache reads.
    """
    caps = sorted({c for c in capabilities if c})
    key = f"playground:quality:{votes_version()}:{','.join(caps)}"
    scores = cache.get(key)
    if scores is None:
        minimum = int(settings.ORCHESTRATOR.get("RATING_MIN_VOTES", 20))
        board = ratings.leaderboard(vote_tuples(capabilities=caps or None), bootstrap=0)
        scores = {r.model: round(r.rating, 3) for r in board.ratings if r.votes >= minimum}
        cache.set(key, scores, CACHE_SECONDS)
    return dict(scores)
