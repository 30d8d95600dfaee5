"""What the dashboard pages show from other apps, composed from their selectors.

`metrics` records and reads calls and knows nothing of routing, the gateway or compare; the
pages sit above all of them, so this is where model, route and key names, breaker state and
budget alerts join the figures.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from redis.exceptions import RedisError

from compare.models import DrillStatus
from compare.selectors import drill_breaker_scope, drills_recent
from gateway.models import ApiKey
from gateway.selectors import budget_alerts_active
from metrics.charts import WaterfallSkip
from metrics.filters import FilterChoices
from metrics.models import CallRecord, Endpoint, Source
from metrics.selectors.dashboard import DashboardData, unpriced_names
from routing.models import ChainStep, ModelConfig, PromptVersion, Provider, TaskRoute
from routing.selectors import breakers_current

logger = logging.getLogger(__name__)


def filter_choices() -> FilterChoices:
    return FilterChoices(
        models=list(ModelConfig.objects.order_by("name").values_list("name", flat=True)),
        providers=list(Provider.objects.order_by("name").values_list("name", flat=True)),
        routes=list(TaskRoute.objects.order_by("task_type").values_list("task_type", flat=True)),
        keys=list(ApiKey.objects.order_by("name").values_list("id", "name")),
    )


def label_maps(data: DashboardData) -> dict[str, dict[Any, str]]:
    """Readable names for the id-valued breakdowns (API keys, prompt versions, sources)."""
    key_ids = [k for k in data.breakdowns["key"] if k]
    pv_ids = [p for p in data.breakdowns["prompt"] if p]
    keys = dict(ApiKey.objects.filter(id__in=key_ids).values_list("id", "name")) if key_ids else {}
    prompts: dict[Any, str] = {}
    if pv_ids:
        for pv in PromptVersion.objects.filter(id__in=pv_ids).select_related("route", "model"):
            prompts[pv.id] = str(pv)
    return {
        "key": {0: "(no key)", **{k: keys.get(k, f"key #{k} (deleted)") for k in key_ids}},
        "prompt": {0: "(no prompt version)", **{p: prompts.get(p, f"#{p} (deleted)") for p in pv_ids}},
        "source": dict(Source.choices),
        "route": {"": "(no route)"},
        "provider": {"": "(unknown)"},
        "endpoint": {"": "(not the gateway)", **dict(Endpoint.choices)},
    }


def unpriced_models(data: DashboardData) -> list[dict[str, Any]]:
    """Models in the window with calls of unknown price, with their config id for the admin link."""
    counts = unpriced_names(data)
    if not counts:
        return []
    ids = dict(ModelConfig.objects.filter(name__in=counts).values_list("name", "id"))
    return [{"name": n, "calls": c, "config_id": ids.get(n)} for n, c in counts.items()]


def budget_alerts() -> list[dict[str, Any]] | None:
    """Active budget alerts; None when the spend counters' store (Redis) does not answer."""
    try:
        return list(budget_alerts_active())
    except (RedisError, OSError):
        logger.warning("budget alerts unavailable: the cache did not answer", exc_info=True)
        return None


DRILLS_SHOWN = timedelta(hours=24)


def _when(ts: Any) -> datetime | None:
    return datetime.fromtimestamp(float(ts), tz=UTC) if ts is not None else None


def breaker_panel() -> dict[str, Any]:
    """Circuit breakers as the engine holds them: live traffic's, and each recent drill's own
    (a drill runs in a breaker scope of its own, so what it opens never skips a live call;
    its scope is cleared when it ends, and its report keeps what opened).

    {"live": [{model, state, failures, opened_at}], "drills": [{id, status, running, url,
    breakers: [...]}]}: drills of the last 24 hours that opened a circuit or are running."""
    live = [_breaker_row(name, state) for name, state in sorted(breakers_current().items())]
    drills = []
    since = timezone.now() - DRILLS_SHOWN
    for drill in drills_recent(limit=10):
        if drill.created_at < since:
            break
        running = drill.status == DrillStatus.RUNNING
        if running:
            states = breakers_current(scope=drill_breaker_scope(drill_id=drill.pk))
            rows = [_breaker_row(name, state) for name, state in sorted(states.items())]
        else:
            opened = (drill.report or {}).get("breakers", {}).get("opened", [])
            rows = [_breaker_row(o["model"], o) for o in opened if o.get("model")]
        if running or rows:
            drills.append(
                {
                    "id": drill.pk,
                    "status": drill.get_status_display(),
                    "running": running,
                    "target": drill.target,
                    "finished_at": drill.finished_at,
                    "breakers": rows,
                }
            )
    return {"live": live, "drills": drills}


def _breaker_row(name: str, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": name,
        "state": state.get("state", "closed"),
        "failures": state.get("failures"),
        "opened_at": _when(state.get("opened_at")),
    }


def _why_not(model: ModelConfig) -> str:
    status = model.status
    if status in ("ready", "simulated"):
        return "no attempt recorded (its circuit was open, or it cannot take the request's options)"
    return status  # "needs key: set OPENAI_API_KEY", "disabled", "provider disabled"


def trace_skips(attempts: list[CallRecord]) -> list[WaterfallSkip]:
    """The steps a chain (or a route before its chain) passed over without a call: a route's
    own model with no attempt when its chain was tried, and chain steps before the last one
    tried that have no attempt. The engine records attempts only, so each skip is read from
    the configuration and says why the model cannot answer now (e.g. its key is missing)."""
    chained = [a for a in attempts if a.chain_name and a.chain_step is not None]
    if not chained:
        return []
    tried = {a.model_name for a in attempts}
    skips: list[WaterfallSkip] = []
    route_name = next((a.task_type for a in attempts if a.task_type), "")
    route = (
        TaskRoute.objects.select_related("model__provider").filter(task_type=route_name).first()
        if route_name
        else None
    )
    if route is not None and route.model is not None and route.model.name not in tried:
        skips.append(WaterfallSkip(route.model.name, None, _why_not(route.model), attempts.index(chained[0])))
    last = max(a.chain_step for a in chained if a.chain_step is not None)
    steps = ChainStep.objects.filter(chain__name=chained[0].chain_name, position__lt=last).select_related(
        "model__provider"
    )
    for step in steps:
        if step.model.name in tried:
            continue
        before = next(
            i for i, a in enumerate(attempts) if a.chain_step is not None and a.chain_step > step.position
        )
        skips.append(WaterfallSkip(step.model.name, step.position, _why_not(step.model), before))
    return skips
