"""GET /v1/models and GET /v1/models/<id>: what a key may call, in OpenAI's model shape
(endpoints without an engine call: nothing is admitted or counted).

Each entry carries an extra `orchestrator` object (the SDKs keep unknown fields) saying whether
it can answer now and with what:

    {"id": "gpt-4o", "object": "model", "created": …, "owned_by": "openai",
     "orchestrator": {"available": false, "reason": "needs key: set OPENAI_API_KEY",
                      "capabilities": ["tool_use", "vision"]}}

A model is available when it and its provider are enabled and the provider's key variable is
set (simulated models need none). A route or chain is available when at least one model it may
use is; its capabilities are those of its available models together (a chain skips a model
without `vision` for a request with an image and moves on to one that has it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from gateway.calls import Admitted, Endpoint
from gateway.db import connections_refresh
from gateway.errors import GatewayError
from gateway.http import GatewayRequest, GatewayResponse, json_response
from routing.models import FallbackChain, ModelConfig, TaskRoute


@dataclass(frozen=True)
class Target:
    id: str
    owner: str
    created: int
    available: bool
    reason: str | None
    capabilities: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "model",
            "created": self.created,
            "owned_by": self.owner,
            "orchestrator": {
                "available": self.available,
                "reason": self.reason,
                "capabilities": list(self.capabilities),
            },
        }


@dataclass(frozen=True)
class _Usable:
    name: str
    reason: str | None  # None: usable now
    capabilities: frozenset[str]


_MODEL_DISABLED = "model disabled"


def _unusable(model: ModelConfig) -> str | None:
    """Why the model cannot be called now (the engine's own reasons), or None."""
    if not model.enabled:
        return _MODEL_DISABLED
    if not model.provider.enabled:
        return f"provider {model.provider.name} disabled"
    if model.provider.needs_key:
        return model.provider.key_status  # "needs key: set OPENAI_API_KEY"
    return None


def _group(name: str, created: int, members: list[_Usable], empty: str) -> Target:
    """A route or chain: available when any model it may use is."""
    usable = [m for m in members if m.reason is None]
    if usable:
        reason = None
    elif members:
        reason = "no usable model: " + "; ".join(f"{m.name} ({m.reason})" for m in members[:5])
    else:
        reason = empty
    capabilities = sorted(set().union(*(m.capabilities for m in usable))) if usable else []
    return Target(name, "orchestrator", created, bool(usable), reason, tuple(capabilities))


def _targets() -> list[Target]:
    """Enabled models, enabled routes and every chain, each with its availability."""
    connections_refresh()
    usable: dict[int, _Usable] = {}
    out: list[Target] = []
    for model in ModelConfig.objects.select_related("provider").prefetch_related("capabilities"):
        reason = _unusable(model)
        caps = frozenset(c.slug for c in model.capabilities.all())
        usable[model.pk] = _Usable(model.name, reason, caps)
        if model.enabled:
            created = int(model.created_at.timestamp())
            out.append(
                Target(model.name, model.provider.name, created, reason is None, reason, tuple(sorted(caps)))
            )
    enabled_models = [u for u in usable.values() if u.reason != _MODEL_DISABLED]
    chains: dict[int, list[_Usable]] = {}
    chain_rows = list(FallbackChain.objects.prefetch_related("steps"))
    for chain in chain_rows:
        chains[chain.pk] = [usable[s.model_id] for s in chain.steps.all() if s.model_id in usable]
    for route in TaskRoute.objects.filter(enabled=True).prefetch_related("capabilities"):
        if route.model_id is not None:
            members = [usable[route.model_id]] if route.model_id in usable else []
        else:
            needed = {c.slug for c in route.capabilities.all()}
            members = [u for u in enabled_models if needed <= u.capabilities]
        members += chains.get(route.fallback_chain_id, []) if route.fallback_chain_id else []
        created = int(route.created_at.timestamp())
        out.append(_group(f"route:{route.task_type}", created, members, "no model has its capabilities"))
    for chain in chain_rows:
        out.append(
            _group(f"chain:{chain.name}", int(chain.created_at.timestamp()), chains[chain.pk], "no steps")
        )
    return out


_targets_aget = sync_to_async(_targets)


class ModelsList(Endpoint[None, list[Target]]):
    admits = False

    def parse(self, request: GatewayRequest) -> None:
        return None

    async def call(self, parsed: None, admitted: Admitted) -> list[Target]:
        return [t for t in await _targets_aget() if admitted.info.allows(t.id)]

    def respond(self, outcome: list[Target], admitted: Admitted) -> GatewayResponse:
        return json_response({"object": "list", "data": [t.to_dict() for t in outcome]})


class ModelRetrieve(Endpoint[str, Target]):
    admits = False

    def parse(self, request: GatewayRequest) -> str:
        return request.params["model_id"]

    async def call(self, parsed: str, admitted: Admitted) -> Target:
        if admitted.info.allows(parsed):
            for target in await _targets_aget():
                if target.id == parsed:
                    return target
        raise GatewayError(
            404,
            f"No model, route or chain named {parsed!r} for this key.",
            code="model_not_found",
            param="model",
        )

    def respond(self, outcome: Target, admitted: Admitted) -> GatewayResponse:
        return json_response(outcome.to_dict())


MODELS_LIST = ModelsList()
MODEL_RETRIEVE = ModelRetrieve()
