"""GET /v1/models and GET /v1/models/<id>: what a key may call, in OpenAI's model shape."""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async

from gateway.chat import GatewayResponse, authenticate, error_response
from gateway.db import connections_refresh
from gateway.errors import GatewayError


def _targets() -> list[tuple[str, str, int]]:
    """(id, owner, created) for enabled models, enabled routes and every chain."""
    from routing.models import FallbackChain, ModelConfig, TaskRoute

    connections_refresh()
    out: list[tuple[str, str, int]] = []
    for name, provider, created in ModelConfig.objects.filter(enabled=True).values_list(
        "name", "provider__name", "created_at"
    ):
        out.append((name, provider, int(created.timestamp())))
    for task_type, created in TaskRoute.objects.filter(enabled=True).values_list("task_type", "created_at"):
        out.append((f"route:{task_type}", "orchestrator", int(created.timestamp())))
    for name, created in FallbackChain.objects.values_list("name", "created_at"):
        out.append((f"chain:{name}", "orchestrator", int(created.timestamp())))
    return out


def _model(name: str, owner: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": owner}


async def models_list(*, authorization: str | None) -> GatewayResponse:
    try:
        info = await authenticate(authorization)
    except GatewayError as exc:
        return error_response(exc)
    targets = await sync_to_async(_targets)()
    data = [_model(*t) for t in targets if info.allows(t[0])]
    return GatewayResponse(200, {}, json.dumps({"object": "list", "data": data}).encode())


async def model_retrieve(*, model_id: str, authorization: str | None) -> GatewayResponse:
    try:
        info = await authenticate(authorization)
        for target in await sync_to_async(_targets)():
            if target[0] == model_id and info.allows(model_id):
                return GatewayResponse(200, {}, json.dumps(_model(*target)).encode())
        raise GatewayError(
            404,
            f"No model, route or chain named {model_id!r} for this key.",
            code="model_not_found",
            param="model",
        )
    except GatewayError as exc:
        return error_response(exc)
