"""A drill's input: its faults (`MODEL:KIND[:RATE]`), its target's models, its limits; creating
and queueing one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from compare.models import Drill, DrillTargetKind
from compare.services.queueing import DRILL_EXECUTE, broker_check, queue_name, tasks_send
from routing.models import FallbackChain, ModelConfig, TaskRoute

FAULT_KINDS: dict[str, str] = {
    "rate_limit": "429 rate limit",
    "server_error": "500 server error",
    "timeout": "timeout",
    "stream_cut": "stream cut mid-answer",
}
MAX_REQUESTS = 1000
MAX_CONCURRENCY = 32
DEFAULT_PROMPT = "Reply with one short sentence confirming you are available."


class DrillInputError(ValueError):
    pass


@dataclass(frozen=True)
class FaultInput:
    model: str
    kind: str
    rate: float

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "kind": self.kind, "rate": self.rate}


def fault_parse(text: str) -> FaultInput:
    """`MODEL:KIND[:RATE]` (the CLI's --fail); rate defaults to 1.0. Model names may hold ':'."""
    parts = text.strip().split(":")
    rate = 1.0
    if len(parts) >= 3:
        try:
            rate = float(parts[-1])
        except ValueError:
            pass
        else:
            parts = parts[:-1]
    if len(parts) < 2:
        raise DrillInputError(f"{text!r}: write MODEL:KIND[:RATE], e.g. gpt-4o:server_error:1.0.")
    return FaultInput(model=":".join(parts[:-1]), kind=parts[-1], rate=rate)


def faults_validate(faults: list[FaultInput]) -> list[FaultInput]:
    if not faults:
        raise DrillInputError("Mark at least one model as failing.")
    known = set(ModelConfig.objects.filter(name__in=[f.model for f in faults]).values_list("name", flat=True))
    seen: set[str] = set()
    for fault in faults:
        if fault.model not in known:
            raise DrillInputError(f"Unknown model {fault.model!r}.")
        if fault.kind not in FAULT_KINDS:
            raise DrillInputError(
                f"{fault.model}: unknown fault {fault.kind!r}; use {', '.join(FAULT_KINDS)}."
            )
        if not 0.0 < fault.rate <= 1.0:
            raise DrillInputError(f"{fault.model}: the failure rate must be above 0 and at most 1.")
        if fault.model in seen:
            raise DrillInputError(f"{fault.model} is marked failing twice.")
        seen.add(fault.model)
    return faults


def drill_target_models(*, target_kind: str, target: str) -> list[str]:
    """The models a drill target would try, in order (for the form and the report)."""
    if target_kind == DrillTargetKind.CHAIN:
        chain = FallbackChain.objects.filter(name=target).first()
        if chain is None:
            raise DrillInputError(f"Unknown fallback chain {target!r}.")
        return list(chain.steps.order_by("position").values_list("model__name", flat=True))
    if target_kind == DrillTargetKind.ROUTE:
        route = TaskRoute.objects.select_related("model", "fallback_chain").filter(task_type=target).first()
        if route is None:
            raise DrillInputError(f"Unknown task route {target!r}.")
        names = [route.model.name] if route.model else []
        if route.fallback_chain:
            names += [
                n
                for n in route.fallback_chain.steps.order_by("position").values_list("model__name", flat=True)
                if n not in names
            ]
        return names
    raise DrillInputError(f"Unknown target kind {target_kind!r}; use chain or route.")


def drill_create(
    *,
    user: Any,
    target_kind: str,
    target: str,
    faults: list[FaultInput],
    requests: int,
    concurrency: int = 4,
    prompt: str = "",
    stream: bool = False,
    baseline: bool = False,
    origin: str = "web",
) -> Drill:
    planned = drill_target_models(target_kind=target_kind, target=target)
    faults_validate(faults)
    if target_kind == DrillTargetKind.CHAIN:
        outside = [f.model for f in faults if f.model not in planned]
        if outside:
            raise DrillInputError(
                f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not in chain {target} "
                f"({' → '.join(planned)}): faulting it would test nothing."
            )
    if not 1 <= requests <= MAX_REQUESTS:
        raise DrillInputError(f"Requests must be between 1 and {MAX_REQUESTS}.")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise DrillInputError(f"Concurrency must be between 1 and {MAX_CONCURRENCY}.")
    return Drill.objects.create(
        created_by=user if getattr(user, "is_authenticated", False) else None,
        origin=origin,
        target_kind=target_kind,
        target=target,
        faults=[f.to_dict() for f in faults],
        requests=requests,
        concurrency=concurrency,
        prompt=prompt.strip() or DEFAULT_PROMPT,
        stream=stream,
        baseline=baseline,
    )


def drill_launch(*, drill_kwargs: dict[str, Any]) -> Drill:
    """Create a drill and queue it (browser path). QueueUnavailable: nothing stored."""
    broker_check()
    with transaction.atomic():
        drill = drill_create(**drill_kwargs)
        queue = queue_name("drills")
        transaction.on_commit(lambda: tasks_send(DRILL_EXECUTE, [[drill.pk]], queue=queue))
    return drill
