"""OpenAI's embeddings wire (`POST /embeddings`) over an OpenAI SDK client, read without the
SDK's models: the same client, auth, Azure deployment paths (the Azure client rewrites
`/embeddings` to `/deployments/{model}/embeddings`), status errors and timeouts as chat.

`embeddings_params` is one request's body; the client (`OpenAIStyleClient.embed`) posts it on
the lean HTTP path (`lean.py`, the target read from the SDK client per model, so Azure's
deployment path is kept) or, where that does not apply, through the SDK (`openai_embed`), and
splits a batch above the provider's limit into several (`routing.providers.batching`).
"""

from __future__ import annotations

import array
import base64
import json
import sys
from typing import Any

import httpx2

from routing.errors import ModelPermanentError, TransientError
from routing.providers.base import EmbeddingRequest, Embeddings, Usage

__all__ = [
    "EMBEDDINGS_PATH",
    "OPENAI_EMBED_BATCH_MAX",
    "embeddings_from_openai_json",
    "embeddings_params",
    "openai_embed",
    "vector_from_base64",
]

EMBEDDINGS_PATH = "/embeddings"
# OpenAI takes up to 2,048 inputs per request (Azure OpenAI the same on current API versions).
OPENAI_EMBED_BATCH_MAX = 2048


def embeddings_params(request: EmbeddingRequest) -> dict[str, Any]:
    """The body of one embeddings request (one batch)."""
    body: dict[str, Any] = {"model": request.model_id, "input": request.inputs, "encoding_format": "float"}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.user:
        body["user"] = request.user
    return body


async def openai_embed(
    sdk_client: Any, request: EmbeddingRequest, timeout_s: float, idempotency: str
) -> Embeddings:
    """One embeddings request through the SDK client's low-level `post` (the SDK path)."""
    options = {"timeout": timeout_s, "idempotency_key": idempotency}
    response = await sdk_client.post(
        EMBEDDINGS_PATH, body=embeddings_params(request), cast_to=httpx2.Response, options=options
    )
    return embeddings_from_openai_json(response.content, count=len(request.inputs))


def vector_from_base64(text: str) -> list[float]:
    """OpenAI's base64 embedding: little-endian float32 values."""
    values = array.array("f", base64.b64decode(text))
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def embeddings_from_openai_json(content: bytes, *, count: int) -> Embeddings:
    """An embeddings response body → Embeddings, the vectors in input order (by `index`)."""
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise TransientError(f"The provider sent an embeddings answer that is not JSON: {exc}") from None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise TransientError("The provider's embeddings answer has no data list.")
    vectors: list[list[float] | None] = [None] * count
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        index = item.get("index", position)
        raw = item.get("embedding")
        if not isinstance(index, int) or not 0 <= index < count:
            continue
        if isinstance(raw, str):
            vectors[index] = vector_from_base64(raw)
        elif isinstance(raw, list):
            vectors[index] = [float(v) for v in raw]
    missing = [i for i, v in enumerate(vectors) if v is None]
    if missing:
        raise ModelPermanentError(
            f"The provider answered {len(items)} embeddings for {count} inputs (missing input {missing[0]})."
        )
    usage = data.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return Embeddings(
        vectors=[v for v in vectors if v is not None],
        usage=Usage(input_tokens=tokens if isinstance(tokens, int) and tokens > 0 else 0),
    )
