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
import json
import random
import re
import threading
from collections.abc import AsyncGenerator

from pydantic import ValidationError

from routing.errors import ModelPermanentError, ProviderError, RequestInvalidError, TransientError
from routing.providers.base import Completion, ProviderRequest, ProviderSpec, StreamEnd, Usage
from routing.providers.simulated.answer import simulated_answer
from routing.providers.simulated.options import Profile, SimulatedOptions, profile_for
from routing.providers.simulated.task import task_from_messages

TOKEN = re.compile(r"\s*\S+")  # a word with the whitespace before it: one token

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
        text, usage, finish = self.answer(request)
        if failure is not None:
            await self._fail(failure, request, base_s)
        if not profile.instant:
            await asyncio.sleep(
                base_s + _read_s(profile, usage) + usage.output_tokens / profile.tokens_per_second
            )
        return Completion(text=text, finish_reason=finish, usage=usage, simulated=True)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[str | StreamEnd, None]:
        profile = self.profile(request.model_id)
        base_s, failure = self._draw(profile)
        text, usage, finish = self.answer(request)
        if failure is not None and failure != "stream_cut":
            await self._fail(failure, request, base_s)
        per_token_s = 0.0
        if not profile.instant:
            first_s = profile.ttft_ms / 1000.0 if profile.ttft_ms is not None else base_s
            await asyncio.sleep(first_s + _read_s(profile, usage))
            per_token_s = 1.0 / profile.tokens_per_second
        words = TOKEN.findall(text)
        cut_after = self.options.stream_cut_after_tokens if failure == "stream_cut" else None
        for i, word in enumerate(words):
            if cut_after is not None and i >= cut_after:
                error = TransientError("Simulated stream cut: the connection dropped mid-answer.")
                error.output_tokens_so_far = i
                raise error
            if i and per_token_s:
                await asyncio.sleep(per_token_s)
            yield word
        if cut_after is not None:
            raise TransientError("Simulated stream cut: the connection dropped before the end.")
        yield StreamEnd(finish_reason=finish, usage=usage, simulated=True)

    async def aclose(self) -> None:
        return None

    # -- behaviour ------------------------------------------------------------------------

    def answer(self, request: ProviderRequest) -> tuple[str, Usage, str]:
        """The answer, its usage and its finish reason ("length" when max_tokens cut it)."""
        sampling = request.sampling
        task = task_from_messages(
            request.messages,
            seed=sampling.seed,
            format_type=sampling.format_type,
            json_schema=sampling.json_schema,
        )
        text = simulated_answer(task, self.profile(request.model_id)).text
        if sampling.format_type != "text":  # the API promises bare JSON
            text = _bare_json(text, object_only=sampling.format_type == "json_object")
        if sampling.stop:
            text = stop_cut(text, sampling.stop)
        words = TOKEN.findall(text)
        finish = "stop"
        if request.max_tokens is not None and len(words) > request.max_tokens:
            words = words[: max(request.max_tokens, 1)]
            text = "".join(words)
            finish = "length"
        input_tokens = sum(len(_content(m.get("content")).split()) for m in request.messages)
        usage = Usage(input_tokens=input_tokens + 3 * len(request.messages), output_tokens=len(words))
        return text, usage, finish

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

    async def _fail(self, failure: str, request: ProviderRequest, latency_s: float) -> None:
        if failure == "hang":
            # Past the deadline: the transport's asyncio.timeout cancels this sleep.
            await asyncio.sleep(request.timeout_s + 5.0)
            raise TransientError("Simulated hang outlived its timeout.", timeout=True)
        if latency_s > 0:
            await asyncio.sleep(latency_s * 0.3)
        raise _failure_error(failure, request)


def _read_s(profile: Profile, usage: Usage) -> float:
    return usage.input_tokens / profile.input_tokens_per_second


def _content(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def _bare_json(text: str, *, object_only: bool) -> str:
    """A JSON answer as the API returns it under a response_format: the JSON, nothing else."""
    try:
        value = json.loads(text)
    except ValueError:
        return json.dumps({"answer": text})
    return json.dumps({"answer": value}) if object_only and not isinstance(value, dict) else text


def stop_cut(text: str, stop: tuple[str, ...]) -> str:
    """`text` up to (not including) the earliest of the stop sequences it contains."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


def _failure_error(failure: str, request: ProviderRequest) -> ProviderError:
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
