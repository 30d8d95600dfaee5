"""The `simulated` kind: in-process answers, no network, labelled simulated.

Options (`routing.schemas.SimulatedOptions`):
- latency: a non-streamed answer takes `latency_ms_mean` ± `latency_ms_jitter` (normal,
  clipped at 0); a stream's first token comes after `ttft_ms` (default: 30% of that
  latency), then tokens arrive at `tokens_per_second`. A model with zero mean and jitter
  answers at once (no per-token delay either).
- failures: each call fails with probability `failure_rate`, with a kind drawn from
  `failure_kinds`: `transient` (503), `rate_limit` (429, retry after 1 s), `server_error`
  (500), `model_permanent` (404 model not found), `request_invalid` (400), `hang` (sleeps
  past the request's timeout, so the transport's timeout fires), `stream_cut` (a stream
  stops after `stream_cut_after_tokens` tokens; a plain call fails as a dropped connection).
  Draws come from a random generator per provider name seeded with that name, so a process
  replays the same sequence.
- text: derived from the prompt (and the model id, or `persona` when set) by hashing, so
  the same prompt always gets the same answer. Most models agree on a prompt and a few
  answer differently, which makes majority votes meaningful.
- sampling options: `stop` cuts the answer before the first stop sequence it contains
  (finish_reason "stop", as OpenAI does); `response_format` json_object answers a JSON
  object, json_schema an object shaped by the schema (properties filled by type). `top_p`,
  `seed` and the penalties change nothing: the answers are deterministic already.
- usage: tokens ≈ words.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import threading
from collections.abc import AsyncGenerator
from typing import Any

from routing.errors import ModelPermanentError, ProviderError, RequestInvalidError, TransientError
from routing.providers.base import Completion, ProviderRequest, ProviderSpec, StreamEnd, Usage
from routing.providers.openai_style import parse_options
from routing.schemas import SimulatedOptions

__all__ = ["SimulatedClient", "make_client", "simulated_text"]


def make_client(spec: ProviderSpec) -> SimulatedClient:
    return SimulatedClient(spec)


_TOKEN = re.compile(r"\s*\S+")  # a word with the whitespace before it: one token

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


class SimulatedClient:
    def __init__(self, spec: ProviderSpec) -> None:
        self.spec = spec
        self.options = parse_options(spec, SimulatedOptions)
        self._rng = _rng_for(spec.name)

    # -- the ProviderClient interface ---------------------------------------------------

    async def complete(self, request: ProviderRequest) -> Completion:
        latency_s, failure = self._draw()
        text, usage, finish = self._answer(request)
        if failure is not None:
            await self._fail(failure, request, latency_s)
        if latency_s > 0:
            await asyncio.sleep(latency_s)
        return Completion(text=text, finish_reason=finish, usage=usage, simulated=True)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[str | StreamEnd, None]:
        latency_s, failure = self._draw()
        text, usage, finish = self._answer(request)
        options = self.options
        ttft_s = options.ttft_ms / 1000.0 if options.ttft_ms is not None else latency_s * 0.3
        if failure is not None and failure != "stream_cut":
            await self._fail(failure, request, latency_s)
        if ttft_s > 0:
            await asyncio.sleep(ttft_s)
        per_token_s = 1.0 / options.tokens_per_second if latency_s > 0 or ttft_s > 0 else 0.0
        words = _TOKEN.findall(text)
        cut_after = options.stream_cut_after_tokens if failure == "stream_cut" else None
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

    def _draw(self) -> tuple[float, str | None]:
        options = self.options
        rng = self._rng
        latency_ms = options.latency_ms_mean
        if options.latency_ms_jitter:
            latency_ms = rng.gauss(options.latency_ms_mean, options.latency_ms_jitter)
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

    def _answer(self, request: ProviderRequest) -> tuple[str, Usage, str]:
        """The answer, its usage and its finish reason ("length" when max_tokens cut it)."""
        prompt = _prompt_text(request.messages)
        voice = self.options.persona or request.model_id
        sampling = request.sampling
        text = simulated_text(prompt, voice=voice, response_format=sampling.format_type)
        if sampling.format_type == "json_schema" and sampling.json_schema is not None:
            text = json.dumps(_value_for(sampling.json_schema, json.loads(text)["answer"]))
        if sampling.stop:
            text = stop_cut(text, sampling.stop)
        words = _TOKEN.findall(text)
        finish = "stop"
        if request.max_tokens is not None and len(words) > request.max_tokens:
            words = words[: max(request.max_tokens, 1)]
            text = "".join(words)
            finish = "length"
        input_tokens = sum(len(str(m.get("content") or "").split()) for m in request.messages)
        usage = Usage(input_tokens=input_tokens + 3 * len(request.messages), output_tokens=len(words))
        return text, usage, finish


def stop_cut(text: str, stop: tuple[str, ...]) -> str:
    """`text` up to (not including) the earliest of the stop sequences it contains."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
    return text if cut < 0 else text[:cut]


def _value_for(schema: Any, answer: str, depth: int = 0) -> Any:
    """A value that fits a (simple) JSON schema: objects get every property, strings the answer."""
    if not isinstance(schema, dict) or depth > 8:
        return answer
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _value_for(schema[key][0], answer, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        return {name: _value_for(sub, answer, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [_value_for(schema.get("items"), answer, depth + 1)]
    return {"integer": 1, "number": 1.0, "boolean": True, "null": None}.get(str(kind), answer)


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


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(f"{m.get('role', '')}: {_content(m.get('content'))}" for m in messages)


def _content(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


# -- Deterministic text ----------------------------------------------------------------------

_OPENINGS = [
    "The short answer is",
    "In brief,",
    "Put simply,",
    "The key point is that",
    "Most likely,",
    "On balance,",
]
_CLAIMS = [
    "the first approach is the safer choice",
    "the second option fits the constraints better",
    "it depends mainly on the size of the input",
    "the result should be verified against a known case",
    "the simplest correct solution is preferable",
    "the cost outweighs the benefit here",
    "the answer is yes, with one caveat",
    "the answer is no, for a structural reason",
]
_DETAILS = [
    "Consider the edge cases before relying on it.",
    "A small test would confirm this quickly.",
    "The trade-off is mostly about latency versus cost.",
    "Keep the interface small and the data explicit.",
    "This matches the usual guidance for such problems.",
    "Measure first, then optimise the slow part.",
]


def _seed(*parts: str) -> int:
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def simulated_text(prompt: str, *, voice: str, response_format: str = "text") -> str:
    """The deterministic answer to `prompt` in `voice` (a model id or persona).

    About three voices in four give the prompt's common answer, word for word (so a
    majority vote has something to count); the rest give their own claim and wording.
    A JSON object when the prompt mentions JSON or `response_format` is not "text"."""
    prompt_seed = _seed("prompt", prompt)
    voice_seed = _seed("voice", voice, prompt)
    claim = _CLAIMS[prompt_seed % len(_CLAIMS)]
    style_seed = prompt_seed
    if voice_seed % 4 == 0:
        claim = _CLAIMS[(prompt_seed + 1 + (voice_seed >> 8) % (len(_CLAIMS) - 1)) % len(_CLAIMS)]
        style_seed = voice_seed
    topic = _topic(prompt)
    if response_format != "text" or "json" in prompt.lower():
        return json.dumps({"answer": claim, "topic": topic, "simulated": True})
    detail = _DETAILS[(style_seed >> 16) % len(_DETAILS)]
    opening = _OPENINGS[(style_seed >> 24) % len(_OPENINGS)]
    about = f" about {topic}" if topic else ""
    return f"{claim.capitalize()}.\n{opening} for the question{about}, {claim}. {detail}"


def _topic(prompt: str) -> str:
    last = prompt.rsplit("user: ", 1)[-1]
    words = [w.strip(".,;:!?\"'()[]{}") for w in last.split()]
    words = [w for w in words if len(w) > 3][:4]
    return " ".join(words).lower()
