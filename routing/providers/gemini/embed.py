"""Gemini embeddings on its native wire: `POST {base}/models/{model}:batchEmbedContents`.

`GeminiClient.embed` sends them with the same HTTP client, key header and error mapping as
generateContent; this module builds the body and reads the answer. `outputDimensionality`
carries `dimensions`. The API takes text only (token arrays are refused before anything is
sent: `embed_refusal`) and returns no token counts, so input tokens are estimated (~4
characters per token), as for a prompt.
"""

from __future__ import annotations

import json
from typing import Any

from routing.errors import ModelPermanentError, TransientError
from routing.providers.base import EmbeddingRequest, Embeddings, Usage

__all__ = ["GEMINI_EMBED_BATCH_MAX", "embed_body", "embed_refusal", "embeddings_from_gemini_json"]

GEMINI_EMBED_BATCH_MAX = 100  # batchEmbedContents takes at most 100 requests


def embed_refusal(request: EmbeddingRequest) -> tuple[str, str] | None:
    """(param, reason) when Gemini cannot take the request: token arrays (it embeds text)."""
    if any(not isinstance(item, str) for item in request.inputs):
        return "input", "token arrays are not supported by gemini (send text)"
    return None


def model_name(model_id: str) -> str:
    return model_id if model_id.startswith(("models/", "tunedModels/")) else f"models/{model_id}"


def embed_body(request: EmbeddingRequest) -> dict[str, Any]:
    entry: dict[str, Any] = {"model": model_name(request.model_id)}
    if request.dimensions is not None:
        entry["outputDimensionality"] = request.dimensions
    return {"requests": [{**entry, "content": {"parts": [{"text": text}]}} for text in request.inputs]}


def embeddings_from_gemini_json(content: bytes, request: EmbeddingRequest) -> Embeddings:
    count = len(request.inputs)
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise TransientError(f"Gemini sent an embeddings answer that is not JSON: {exc}") from None
    items = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise TransientError("Gemini's embeddings answer has no embeddings list.")
    vectors = [
        [float(v) for v in item["values"]]
        for item in items
        if isinstance(item, dict) and isinstance(item.get("values"), list)
    ]
    if len(vectors) != count:
        raise ModelPermanentError(f"Gemini answered {len(vectors)} embeddings for {count} inputs.")
    chars = sum(len(text) for text in request.inputs if isinstance(text, str))
    return Embeddings(vectors=vectors, usage=Usage(input_tokens=(chars + 3) // 4))
