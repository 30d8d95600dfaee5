"""Creating, estimating and cancelling compare runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from compare.assertions import AssertionSpec
from compare.models import (
    OPEN_CELL_STATUSES,
    CandidateKind,
    CellStatus,
    CompareCandidate,
    CompareCell,
    ComparePrompt,
    CompareRun,
    RunStatus,
)
from compare.parsing import PromptRow
from compare.services.queueing import CELL_EXECUTE, broker_check, queue_name, tasks_send
from routing import orchestrator
from routing.errors import OrchestratorError
from routing.models import ModelConfig, PromptVersion, TaskRoute
from routing.pricing import model_unit_prices

logger = logging.getLogger(__name__)

MAX_CANDIDATES = 12
CHARS_PER_TOKEN = 4
JUDGE_OUTPUT_TOKENS = 80


class CompareInputError(ValueError):
    """Input a run cannot be made from; the message says what to fix."""


@dataclass
class CandidateSpec:
    kind: str
    target: str
    label: str
    pool: str
    prompt_version_id: int | None = None
    system_prompt: str = ""
    # The model whose prices estimate this candidate (None: unknown, e.g. a selecting route).
    price_model: ModelConfig | None = None


def model_problem(model: ModelConfig) -> str | None:
    if not model.enabled:
        return f"Model {model.name} is disabled."
    if not model.provider.enabled:
        return f"Model {model.name}: its provider {model.provider.name} is disabled."
    if model.provider.needs_key:
        return f"Model {model.name}: {model.provider.key_status}."
    return None


def _route_model(route: TaskRoute) -> ModelConfig | None:
    """The model a route would use now: its fixed model, or what selection picks (for pricing)."""
    if route.model is not None:
        return route.model
    try:
        name = orchestrator.select_model(
            list(route.capabilities.values_list("slug", flat=True)), optimize_for=route.optimize_for
        )
    except (OrchestratorError, NotImplementedError):
        return None
    return ModelConfig.objects.select_related("provider").filter(name=name).first()


def _route_spec(route: TaskRoute, *, label: str, system_prompt: str = "") -> CandidateSpec:
    model = _route_model(route)
    return CandidateSpec(
        kind=CandidateKind.ROUTE,
        target=route.task_type,
        label=label,
        pool=route.model.provider.name if route.model is not None else f"route:{route.task_type}",
        system_prompt=system_prompt or (route.active_prompt.system_prompt if route.active_prompt else ""),
        price_model=model,
    )


def candidates_parse(*, values: list[str], rows: list[PromptRow]) -> list[CandidateSpec]:
    """Turn the form's `model:NAME`, `route:TASK`, `route:*`, `prompt:ID` values into specs."""
    seen: set[str] = set()
    specs: list[CandidateSpec] = []
    for raw in values:
        value = raw.strip()
        if not value or value in seen:
            continue
        seen.add(value)
        kind, _, target = value.partition(":")
        if kind == "model":
            model = ModelConfig.objects.select_related("provider").filter(name=target).first()
            if model is None:
                raise CompareInputError(f"Unknown model {target!r}.")
            problem = model_problem(model)
            if problem:
                raise CompareInputError(problem)
            specs.append(
                CandidateSpec(
                    kind=CandidateKind.MODEL,
                    target=model.name,
                    label=model.name,
                    pool=model.provider.name,
                    price_model=model,
                )
            )
        elif kind == "route" and target == "*":
            missing = [i for i, row in enumerate(rows, start=1) if not row.task_type]
            if missing:
                raise CompareInputError(
                    f"'Each prompt's own route' needs a task_type on every prompt; prompt {missing[0]} has none."
                )
            known = set(TaskRoute.objects.filter(enabled=True).values_list("task_type", flat=True))
            for i, row in enumerate(rows, start=1):
                if row.task_type not in known:
                    raise CompareInputError(f"Prompt {i}: unknown task route {row.task_type!r}.")
            specs.append(
                CandidateSpec(kind=CandidateKind.ROUTE, target="*", label="own route", pool="routes")
            )
        elif kind == "route":
            route = (
                TaskRoute.objects.select_related("model__provider", "active_prompt")
                .filter(task_type=target)
                .first()
            )
            if route is None:
                raise CompareInputError(f"Unknown task route {target!r}.")
            if not route.enabled:
                raise CompareInputError(f"Task route {target} is disabled.")
            specs.append(_route_spec(route, label=f"route {route.task_type}"))
        elif kind == "prompt":
            version = (
                PromptVersion.objects.select_related("route__model__provider", "model__provider")
                .filter(pk=int(target) if target.isdigit() else 0)
                .first()
            )
            if version is None:
                raise CompareInputError(f"Unknown prompt version {target!r}.")
            spec = _route_spec(
                version.route,
                label=f"{version.route.task_type} v{version.version}"
                + (f" ({version.model.name})" if version.model else ""),
                system_prompt=version.system_prompt,
            )
            spec.kind = CandidateKind.PROMPT
            spec.prompt_version_id = version.pk
            specs.append(spec)
        else:
            raise CompareInputError(f"Unknown candidate {value!r}.")
    if not specs:
        raise CompareInputError("Pick at least one model, route or prompt version to compare.")
    if len(specs) > MAX_CANDIDATES:
        raise CompareInputError(f"At most {MAX_CANDIDATES} candidates per run.")
    return specs


def _tokens(text: str) -> int:
    if not text:
        return 0
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN + 4


def unit_prices(model: ModelConfig | None) -> tuple[Decimal | None, Decimal | None]:
    if model is None:
        return None, None
    try:
        price_in, price_out, _source = model_unit_prices(model)
    except Exception:
        logger.exception("pricing failed for %s", model.name)
        return None, None
    return price_in, price_out


def _price(model: ModelConfig | None, tokens_in: int, tokens_out: int) -> Decimal | None:
    price_in, price_out = unit_prices(model)
    if price_in is None or price_out is None:
        return None
    return (Decimal(tokens_in) * price_in + Decimal(tokens_out) * price_out) / 1000


@dataclass
class Estimate:
    total_usd: Decimal = Decimal("0")
    incomplete: bool = False
    per_candidate: list[dict[str, Any]] = field(default_factory=list)
    cells: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


def cell_estimate(
    *, spec_price_model: ModelConfig | None, system_prompt: str, prompt: str, max_tokens: int
) -> Decimal | None:
    """Upper bound of one cell's call: its prompt's tokens in, `max_tokens` out."""
    return _price(spec_price_model, _tokens(system_prompt) + _tokens(prompt), max_tokens)


def run_estimate(
    *,
    rows: list[PromptRow],
    candidates: list[CandidateSpec],
    assertions: list[AssertionSpec],
    max_tokens: int,
) -> Estimate:
    """Tokens × prices for every cell (answers assumed to use `max_tokens`: an upper bound)."""
    estimate = Estimate(cells=len(rows) * len(candidates))
    judges = [a for a in assertions if a.kind == "judge"]
    judge_models = {m.name: m for m in ModelConfig.objects.filter(name__in=[a.model for a in judges])}
    routes: dict[str, TaskRoute] = {}
    if any(c.target == "*" for c in candidates):
        routes = {
            r.task_type: r
            for r in TaskRoute.objects.select_related("model", "active_prompt").filter(
                task_type__in={row.task_type for row in rows}
            )
        }
    for spec in candidates:
        cost: Decimal | None = Decimal("0")
        for row in rows:
            price_model, system = spec.price_model, spec.system_prompt
            if spec.target == "*":
                route = routes.get(row.task_type)
                price_model = route.model if route else None
                system = route.active_prompt.system_prompt if route and route.active_prompt else ""
            tokens_in = _tokens(system) + _tokens(row.input)
            estimate.input_tokens += tokens_in
            estimate.output_tokens += max_tokens
            one = _price(price_model, tokens_in, max_tokens)
            for judge in judges:
                judge_in = _tokens(row.input) + _tokens(row.expected) + max_tokens + _tokens(judge.value) + 60
                judge_cost = _price(judge_models.get(judge.model), judge_in, JUDGE_OUTPUT_TOKENS)
                one = None if one is None or judge_cost is None else one + judge_cost
            if one is None or cost is None:
                cost = None
            else:
                cost += one
        estimate.per_candidate.append({"label": spec.label, "cost_usd": cost})
        if cost is None:
            estimate.incomplete = True
        else:
            estimate.total_usd += cost
    return estimate


def _enqueue_cells(run_id: int, cell_ids: list[int], queue: str) -> None:
    try:
        tasks_send(CELL_EXECUTE, [[cell_id, 0] for cell_id in cell_ids], queue=queue)  # dispatch 0
    except Exception as exc:
        # The broker went away between the check and the commit: say so on the run rather
        # than leave cells nobody will run.
        logger.exception("could not queue the cells of compare run %s", run_id)
        CompareRun.objects.filter(pk=run_id).update(
            status=RunStatus.FAILED, error=f"Could not queue the cells: {exc}", finished_at=timezone.now()
        )
        CompareCell.objects.filter(run_id=run_id, status=CellStatus.PENDING).update(
            status=CellStatus.CANCELLED, error="not queued"
        )


def run_create(
    *,
    user: Any,
    name: str,
    rows: list[PromptRow],
    candidates: list[CandidateSpec],
    assertions: list[AssertionSpec],
    max_tokens: int,
    temperature: float | None,
    spend_cap_usd: Decimal | None,
) -> CompareRun:
    """Store the run, its prompts, candidates and cells in one transaction, then queue one
    task per cell once it commits. Raises QueueUnavailable (nothing stored) when the broker is down."""
    max_prompts = int(settings.ORCHESTRATOR["COMPARE_MAX_PROMPTS"])
    if not rows:
        raise CompareInputError("The prompt set is empty.")
    if len(rows) > max_prompts:
        raise CompareInputError(f"The prompt set has {len(rows)} prompts; the limit is {max_prompts}.")
    if spend_cap_usd is not None and spend_cap_usd <= 0:
        raise CompareInputError("The spend cap must be above zero (or empty for no cap).")
    estimate = run_estimate(rows=rows, candidates=candidates, assertions=assertions, max_tokens=max_tokens)
    broker_check()
    queue = queue_name("cells")
    with transaction.atomic():
        run = CompareRun.objects.create(
            name=name.strip()[:200],
            created_by=user if getattr(user, "is_authenticated", False) else None,
            assertions=[a.to_dict() for a in assertions],
            temperature=temperature,
            max_tokens=max_tokens,
            estimated_cost_usd=estimate.total_usd,
            estimate_incomplete=estimate.incomplete,
            spend_cap_usd=spend_cap_usd,
            queue=queue,
        )
        prompts = ComparePrompt.objects.bulk_create(
            [
                ComparePrompt(
                    run=run, position=i, input=row.input, expected=row.expected, task_type=row.task_type
                )
                for i, row in enumerate(rows)
            ]
        )
        cands = CompareCandidate.objects.bulk_create(
            [
                CompareCandidate(
                    run=run,
                    position=i,
                    kind=spec.kind,
                    target=spec.target,
                    prompt_version_id=spec.prompt_version_id,
                    label=spec.label,
                    pool=spec.pool,
                )
                for i, spec in enumerate(candidates)
            ]
        )
        CompareCell.objects.bulk_create(
            [CompareCell(run=run, prompt=p, candidate=c) for p in prompts for c in cands]
        )
        cell_ids = list(CompareCell.objects.filter(run=run).order_by("id").values_list("id", flat=True))
        transaction.on_commit(lambda: _enqueue_cells(run.pk, cell_ids, queue))
    return run


def run_finish_if_complete(*, run_id: int) -> bool:
    """Mark a running run done once no cell is open. Safe to call from every cell."""
    if CompareCell.objects.filter(run_id=run_id, status__in=OPEN_CELL_STATUSES).exists():
        return False
    return bool(
        CompareRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.DONE, finished_at=timezone.now()
        )
    )


def run_stop(*, run_id: int, status: str, reason: str) -> bool:
    """Stop a running run (cancelled or capped): waiting cells will not run; cells already
    calling a model finish and are kept."""
    stopped = CompareRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
        status=status, finished_at=timezone.now()
    )
    cell_status = CellStatus.CANCELLED if status == RunStatus.CANCELLED else CellStatus.SKIPPED
    CompareCell.objects.filter(run_id=run_id, status=CellStatus.PENDING).update(
        status=cell_status, error=reason, finished_at=timezone.now()
    )
    return bool(stopped)


def run_cancel(*, run: CompareRun) -> bool:
    return run_stop(run_id=run.pk, status=RunStatus.CANCELLED, reason="cancelled")
