"""Simulated embeddings: deterministic, normalised vectors from the text, offline.

Each word (lower-cased; a token id of a token array counts as a word) adds a few ±1 entries at
positions drawn from its hash (feature hashing), so the same text always gives the same vector,
texts sharing words point in similar directions (cosine similarity means something in a demo
RAG setup), and unrelated texts are nearly orthogonal. The vector is scaled to length 1. The
dimension is the request's `dimensions`, else the model's configured one, else 256.
"""

from __future__ import annotations

import hashlib
import math
import re

from routing.providers.base import EmbeddingRequest, Usage

__all__ = ["DEFAULT_DIMENSIONS", "simulated_embeddings", "simulated_vector"]

DEFAULT_DIMENSIONS = 256
HITS_PER_WORD = 6  # entries each word touches
WORD = re.compile(r"\w+", re.UNICODE)


def _words(item: str | list[int]) -> list[str]:
    if isinstance(item, str):
        return WORD.findall(item.lower()) or ([item] if item else [""])
    return [f"#{token}" for token in item] or [""]


def simulated_vector(item: str | list[int], dimensions: int) -> list[float]:
    vector = [0.0] * dimensions
    for word in _words(item):
        digest = hashlib.blake2b(
            word.encode("utf-8", "surrogatepass"), digest_size=4 * HITS_PER_WORD
        ).digest()
        for i in range(HITS_PER_WORD):
            value = int.from_bytes(digest[4 * i : 4 * i + 4], "little")
            vector[(value >> 1) % dimensions] += 1.0 if value & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0.0:  # every hit cancelled out: any fixed unit vector will do
        vector[0], norm = 1.0, 1.0
    return [v / norm for v in vector]


def simulated_embeddings(request: EmbeddingRequest) -> tuple[list[list[float]], Usage]:
    """The vectors for every input, and the input tokens (one per word, as the chat side counts)."""
    dimensions = request.dimensions or request.model_dimensions or DEFAULT_DIMENSIONS
    vectors = [simulated_vector(item, dimensions) for item in request.inputs]
    tokens = sum(len(item) if isinstance(item, list) else len(item.split()) for item in request.inputs)
    return vectors, Usage(input_tokens=max(tokens, len(request.inputs)))
