"""GET /v1/models and GET /v1/models/<id>: what a key may call, in OpenAI's model shape
(endpoints without an engine call: nothing is admitted or counted)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async

from gateway.calls import Admitted, Endpoint
from gateway.db import connections_refresh
from gateway.errors import GatewayError
from gateway.http import GatewayRequest, GatewayResponse, json_response
from routing.models import FallbackChain, ModelConfig, TaskRoute

Target = tuple[str, str, int]  # (id, owner, created)


def _targets() -> list[Target]:
    """(id, owner, created) for enabled models, enabled routes and every chain."""
    connections_refresh()
    out: list[Target] = []
    for name, provider, created in ModelConfig.objects.filter(enabled=True).values_list(
        "name", "provider__name", "created_at"
    ):
        out.append((name, provider, int(created.timestamp())))
    for task_type, created in TaskRoute.objects.filter(enabled=True).values_list("task_type", "created_at"):
        out.append((f"route:{task_type}", "orchestrator", int(created.timestamp())))
    for name, created in FallbackChain.objects.values_list("name", "created_at"):
        out.append((f"chain:{name}", "orchestrator", int(created.timestamp())))
    return out


_targets_aget = sync_to_async(_targets)


def _model(name: str, owner: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": owner}


class ModelsList(Endpoint[None, list[Target]]):
    admits = False

    def parse(self, request: GatewayRequest) -> None:
        return None

    async def call(self, parsed: None, admitted: Admitted) -> list[Target]:
        return [t for t in await _targets_aget() if admitted.info.allows(t[0])]

    def respond(self, outcome: list[Target], admitted: Admitted) -> GatewayResponse:
        return json_response({"object": "list", "data": [_model(*t) for t in outcome]})


class ModelRetrieve(Endpoint[str, Target]):
    admits = False

    def parse(self, request: GatewayRequest) -> str:
        return request.params["model_id"]

    async def call(self, parsed: str, admitted: Admitted) -> Target:
        if admitted.info.allows(parsed):
            for target in await _targets_aget():
                if target[0] == parsed:
                    return target
        raise GatewayError(
            404,
            f"No model, route or chain named {parsed!r} for this key.",
            code="model_not_found",
            param="model",
        )

    def respond(self, outcome: Target, admitted: Admitted) -> GatewayResponse:
        return json_response(_model(*outcome))


MODELS_LIST = ModelsList()
MODEL_RETRIEVE = ModelRetrieve()
