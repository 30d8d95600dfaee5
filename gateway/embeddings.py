"""POST /v1/embeddings: OpenAI's embeddings as a gateway endpoint (an adapter over the sequence in
gateway/calls.py): parse, call the engine (`routing.orchestrator.aembed`), shape the answer.

`model` is an embedding model's name, `chain:<name>` (a chain of embedding models of one
dimension) or `route:<task_type>` (a route whose model or capabilities select embedding models).
`input`: a string, a list of strings, a token array or a list of them; `encoding_format`
`float` (the default) or `base64` (little-endian float32, which the OpenAI SDKs ask for and
decode themselves); `dimensions`; `user`. Bad input is a 400 naming the field, before anything
is counted; the limits, budget and records are the sequence's, as for chat (tpm counts the
input tokens).
"""

from __future__ import annotations

import array
import base64
import json
import sys
from dataclasses import dataclass
from typing import Any

from gateway.calls import Admitted, Endpoint, Spend
from gateway.errors import invalid
from gateway.http import GatewayRequest, GatewayResponse, cost_text
from gateway.validation import json_parse
from routing.errors import InvalidRequest
from routing.orchestrator import (
    EmbeddingResult,
    aembed,
    embed_dimensions_check,
    embed_inputs_check,
    embed_user_check,
    type_name,
)

ENCODINGS = ("float", "base64")


@dataclass
class EmbeddingsRequest:
    model: str
    inputs: list[str | list[int]]
    encoding_format: str = "float"
    dimensions: int | None = None
    user: str | None = None

    @property
    def target(self) -> tuple[str, str]:
        """("model" | "route" | "chain", name)."""
        for kind in ("route", "chain"):
            if self.model.startswith(f"{kind}:"):
                return kind, self.model[len(kind) + 1 :]
        return "model", self.model


def _checked(fn: Any, value: Any) -> Any:
    try:
        return fn(value)
    except InvalidRequest as exc:
        raise invalid(exc.message, param=exc.param, code=exc.code) from None


def embeddings_request_parse(data: Any) -> EmbeddingsRequest:
    if not isinstance(data, dict):
        raise invalid(f"The request body must be a JSON object, not {type_name(data)}.", code="invalid_type")
    model = data.get("model")
    if model is None:
        raise invalid(
            "model is required: an embedding model's name, 'chain:<name>' or 'route:<task_type>'.",
            param="model",
        )
    if not isinstance(model, str):
        raise invalid(f"model must be a string, not {type_name(model)}.", param="model", code="invalid_type")
    model = model.strip()
    if not model or model in ("route:", "chain:") or len(model) > 200:
        raise invalid("model must be a model name, 'route:<task_type>' or 'chain:<name>'.", param="model")
    if "input" not in data:
        raise invalid("input is required: a string, a list of strings, or token arrays.", param="input")
    inputs = _checked(embed_inputs_check, data["input"])
    encoding = data.get("encoding_format")
    if encoding is None:
        encoding = "float"
    if encoding not in ENCODINGS:
        raise invalid(
            f"encoding_format must be 'float' or 'base64', not {encoding!r}.",
            param="encoding_format",
            code="invalid_value",
        )
    return EmbeddingsRequest(
        model=model,
        inputs=inputs,
        encoding_format=encoding,
        dimensions=_checked(embed_dimensions_check, data.get("dimensions")),
        user=_checked(embed_user_check, data.get("user")),
    )


def vector_base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: the values as little-endian float32."""
    values = array.array("f", vector)
    if sys.byteorder == "big":
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


def embeddings_dict(result: EmbeddingResult, encoding: str) -> dict[str, Any]:
    encode = vector_base64 if encoding == "base64" else None
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(v) if encode else v}
            for i, v in enumerate(result.vectors)
        ],
        "model": result.model,
        "usage": {"prompt_tokens": result.usage.input_tokens, "total_tokens": result.usage.input_tokens},
    }


@dataclass
class Embedded:
    """The engine's answer and how the caller wants it encoded."""

    result: EmbeddingResult
    encoding: str


def result_headers(result: EmbeddingResult) -> dict[str, str]:
    return {
        "x-orchestrator-trace-id": result.trace_id,
        "x-orchestrator-attempts": str(max(1, len(result.attempts))),
        "x-orchestrator-cost-usd": cost_text(result.cost_usd),
        "x-orchestrator-model": result.model,
    }


class Embeddings(Endpoint[EmbeddingsRequest, Embedded]):
    endpoint = "embeddings"

    def parse(self, request: GatewayRequest) -> EmbeddingsRequest:
        return embeddings_request_parse(json_parse(request.body))

    def targets(self, parsed: EmbeddingsRequest) -> list[str]:
        return [parsed.model]

    async def call(self, parsed: EmbeddingsRequest, admitted: Admitted) -> Embedded:
        kind, name = parsed.target
        target = {"route": {"task_type": name}, "chain": {"chain": name}}.get(kind) or {"model": name}
        result = await aembed(
            parsed.inputs,
            dimensions=parsed.dimensions,
            user=parsed.user,
            **target,
            **admitted.engine_kwargs(),
        )
        return Embedded(result, parsed.encoding_format)

    def spent(self, outcome: Embedded) -> Spend | None:
        return Spend(outcome.result.usage.input_tokens, outcome.result.cost_usd)

    def respond(self, outcome: Embedded, admitted: Admitted) -> GatewayResponse:
        payload = json.dumps(embeddings_dict(outcome.result, outcome.encoding), separators=(",", ":"))
        return GatewayResponse(200, result_headers(outcome.result), payload.encode())


EMBEDDINGS = Embeddings()
