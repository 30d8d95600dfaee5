"""The simulated client: answers from `simulated_answer`, timed and failing like a real API.

Timing: a call waits a fixed part drawn from `latency_ms_mean` ± `latency_ms_jitter` (normal,
clipped at 0), plus the prompt read at `input_tokens_per_second`, plus the answer written at
`tokens_per_second`. A stream's first token comes after the fixed part (or `ttft_ms` when set)
and the prompt read; then tokens arrive at `tokens_per_second`. A model with zero mean, jitter
and ttft answers at once. Failure and latency draws come from a generator per provider name,
seeded with the name, so a process replays the same sequence.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncGenerator
from typing import Any

from pydantic import ValidationError

from routing.errors import ModelPermanentError, ProviderError, RequestInvalidError, TransientError
from routing.providers.base import (
    Choice,
    Completion,
    EmbeddingRequest,
    Embeddings,
    ProviderRequest,
    ProviderSpec,
    StreamEnd,
    ToolCallDelta,
    Usage,
)
from routing.providers.simulated.embed import simulated_embeddings
from routing.providers.simulated.options import Profile, SimulatedOptions, profile_for
from routing.providers.simulated.reply import TOKEN, input_tokens, simulated_reply

ARGUMENT_PIECES = 3  # a streamed call's arguments arrive in this many fragments

# One generator per provider name for the whole process: clients are made per event loop
# (sync wrappers may make a loop per call), and the failure sequence must not restart.
_rngs: dict[str, random.Random] = {}
_rngs_lock = threading.Lock()


def _rng_for(name: str) -> random.Random:
    with _rngs_lock:
        rng = _rngs.get(name)
        if rng is None:
            rng = _rngs[name] = random.Random(name)
        return rng


def reset_random(name: str | None = None) -> None:
    """Restart the failure/latency draws (tests)."""
    with _rngs_lock:
        if name is None:
            _rngs.clear()
        else:
            _rngs.pop(name, None)


def options_parse(spec: ProviderSpec) -> SimulatedOptions:
    """The provider's options, validated; invalid ones make the model unusable (no retry)."""
    try:
        return SimulatedOptions.model_validate(spec.options or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}" for err in exc.errors()
        )
        raise ModelPermanentError(f"Provider {spec.name} has invalid options: {problems}") from None


class SimulatedClient:
    def __init__(self, spec: ProviderSpec) -> None:
        self.spec = spec
        self.options = options_parse(spec)
        self._rng = _rng_for(spec.name)
        self._profiles: dict[str, Profile] = {}

    def profile(self, model_id: str) -> Profile:
        found = self._profiles.get(model_id)
        if found is None:
            found = self._profiles[model_id] = profile_for(self.options, model_id)
        return found

    # -- the ProviderClient interface ---------------------------------------------------

    async def complete(self, request: ProviderRequest) -> Completion:
        profile = self.profile(request.model_id)
        base_s, failure = self._draw(profile)
        replies = [simulated_reply(request, profile, choice=i) for i in range(max(request.chat.n, 1))]
        usage = Usage(input_tokens=input_tokens(request), output_tokens=sum(r.output_tokens for r in replies))
        if failure is not None:
            await self._fail(failure, request, base_s)
        if not profile.instant:
            await asyncio.sleep(
                base_s + _read_s(profile, usage) + usage.output_tokens / profile.tokens_per_second
            )
        first = replies[0]
        return Completion(
            text=first.text,
            finish_reason=first.finish_reason,
            usage=usage,
            simulated=True,
            tool_calls=first.tool_calls,
            more_choices=[
                Choice(text=r.text, finish_reason=r.finish_reason, tool_calls=r.tool_calls)
                for r in replies[1:]
            ],
        )

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[str | ToolCallDelta | StreamEnd, None]:
        profile = self.profile(request.model_id)
        base_s, failure = self._draw(profile)
        reply = simulated_reply(request, profile)
        usage = Usage(input_tokens=input_tokens(request), output_tokens=reply.output_tokens)
        if failure is not None and failure != "stream_cut":
            await self._fail(failure, request, base_s)
        per_token_s = 0.0
        if not profile.instant:
            first_s = profile.ttft_ms / 1000.0 if profile.ttft_ms is not None else base_s
            await asyncio.sleep(first_s + _read_s(profile, usage))
            per_token_s = 1.0 / profile.tokens_per_second
        pieces: list[str | ToolCallDelta] = [*TOKEN.findall(reply.text), *tool_call_pieces(reply.tool_calls)]
        cut_after = self.options.stream_cut_after_tokens if failure == "stream_cut" else None
        for i, piece in enumerate(pieces):
            if cut_after is not None and i >= cut_after:
                error = TransientError("Simulated stream cut: the connection dropped mid-answer.")
                error.output_tokens_so_far = i
                raise error
            if i and per_token_s:
                await asyncio.sleep(per_token_s)
            yield piece
        if cut_after is not None:
            raise TransientError("Simulated stream cut: the connection dropped before the end.")
        yield StreamEnd(
            finish_reason=reply.finish_reason, usage=usage, simulated=True, tool_calls=reply.tool_calls
        )

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """Deterministic normalised vectors (`embed.py`), timed and failing like `complete`."""
        profile = self.profile(request.model_id)
        base_s, failure = self._draw(profile)
        if failure is not None:
            await self._fail(failure, request, base_s)
        vectors, usage = simulated_embeddings(request)
        if not profile.instant:
            await asyncio.sleep(base_s + _read_s(profile, usage))
        return Embeddings(vectors=vectors, usage=usage, simulated=True)

    async def aclose(self) -> None:
        return None

    # -- behaviour ------------------------------------------------------------------------

    def _draw(self, profile: Profile) -> tuple[float, str | None]:
        options = self.options
        rng = self._rng
        latency_ms = profile.latency_ms_mean
        if profile.latency_ms_jitter:
            latency_ms = rng.gauss(profile.latency_ms_mean, profile.latency_ms_jitter)
        failure = None
        if options.failure_rate and options.failure_kinds and rng.random() < options.failure_rate:
            failure = rng.choice(options.failure_kinds)
        return max(latency_ms, 0.0) / 1000.0, failure

    async def _fail(
        self, failure: str, request: ProviderRequest | EmbeddingRequest, latency_s: float
    ) -> None:
        if failure == "hang":
            # Past the deadline: the transport's asyncio.timeout cancels this sleep.
            await asyncio.sleep(request.timeout_s + 5.0)
            raise TransientError("Simulated hang outlived its timeout.", timeout=True)
        if latency_s > 0:
            await asyncio.sleep(latency_s * 0.3)
        raise _failure_error(failure, request)


def _read_s(profile: Profile, usage: Usage) -> float:
    return usage.input_tokens / profile.input_tokens_per_second


def tool_call_pieces(calls: list[dict[str, Any]]) -> list[ToolCallDelta]:
    """Each call as OpenAI streams it: its id and name, then its arguments in a few fragments."""
    pieces = []
    for index, call in enumerate(calls):
        function = call["function"]
        pieces.append(ToolCallDelta(index=index, id=call["id"], name=function["name"]))
        arguments = function["arguments"]
        size = max(1, -(-len(arguments) // ARGUMENT_PIECES))
        pieces += [
            ToolCallDelta(index=index, arguments=arguments[at : at + size])
            for at in range(0, len(arguments), size)
        ]
    return pieces


def _failure_error(failure: str, request: ProviderRequest | EmbeddingRequest) -> ProviderError:
    if failure == "rate_limit":
        return TransientError("HTTP 429: simulated rate limit.", http_status=429, retry_after_s=1.0)
    if failure == "server_error":
        return TransientError("HTTP 500: simulated server error.", http_status=500)
    if failure == "transient":
        return TransientError("HTTP 503: simulated overload.", http_status=503)
    if failure == "model_permanent":
        return ModelPermanentError(
            f"HTTP 404: simulated model {request.model_id!r} not found.", http_status=404
        )
    if failure == "request_invalid":
        return RequestInvalidError("HTTP 400: simulated invalid request.", http_status=400)
    # stream_cut on a non-streamed call: the connection drops before the body arrives.
    return TransientError("Simulated stream cut: the connection dropped mid-response.")
