"""Choosing models: which can serve a request, in which order (pure functions over a Snapshot)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from routing.engine.breaker import breaker_would_skip
from routing.engine.config import ModelSnap, Snapshot
from routing.errors import AllAttemptsFailed, InvalidRequest, NoCandidate, ProviderKeyMissing
from routing.messages import NO_CHAT_OPTIONS, ChatOptions
from routing.models import EMBEDDING
from routing.providers.registry import chat_refusal_for, sampling_refusal_for
from routing.sampling import NO_SAMPLING, SamplingOptions

OPTIMIZE_FOR = ("cost", "latency", "quality")
DEFAULT_OUTPUT_TOKENS = 256  # assumed answer length when pricing a request without max_tokens


def estimate_prompt_tokens(messages: Iterable[Mapping[str, Any]]) -> int:
    """~4 characters per token plus a few per message (good enough to compare with a window)."""
    chars = 0
    count = 0
    for message in messages:
        count += 1
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    chars += len(part["text"])
    return (chars + 3) // 4 + 4 * count


def model_unusable(model: ModelSnap) -> tuple[str, str] | None:
    """(category, reason) when the model cannot be called at all, else None."""
    if not model.enabled:
        return "disabled", "model disabled"
    if not model.provider.enabled:
        return "disabled", f"provider {model.provider.name} disabled"
    if model.provider.needs_key:
        var = model.provider.api_key_env
        return "key", f"provider {model.provider.name} needs its key: set {var}" if var else (
            f"provider {model.provider.name} needs a key variable"
        )
    return None


def sampling_refused(model: ModelSnap, options: SamplingOptions) -> tuple[str, str] | None:
    """(param, reason) when the model's provider kind cannot honour `options`, else None."""
    if options is NO_SAMPLING:
        return None
    refusal = sampling_refusal_for(model.provider.kind)
    if refusal is None:
        return None
    found = refusal(options)
    if found is None:
        return None
    return found[0], f"{model.name}: {found[1]}"


def chat_refused(model: ModelSnap, options: ChatOptions) -> tuple[str, str] | None:
    """(param, reason) when the model's provider kind cannot honour the chat `options`
    (logprobs, reasoning_effort, …), else None."""
    if options is NO_CHAT_OPTIONS:
        return None
    refusal = chat_refusal_for(model.provider.kind)
    if refusal is None:
        return None
    found = refusal(options)
    if found is None:
        return None
    return found[0], f"{model.name}: {found[1]}"


def request_refused(model: ModelSnap, sampling: SamplingOptions, chat: ChatOptions) -> tuple[str, str] | None:
    """(param, reason) when the model's kind cannot honour the sampling or chat options."""
    return sampling_refused(model, sampling) or chat_refused(model, chat)


def capability_missing(model: ModelSnap, needs: Iterable[str]) -> str | None:
    """ "no vision" (, "no tool_use"): the capabilities the request needs that the model lacks."""
    missing = [f"no {c}" for c in needs if c not in model.capabilities]
    return ", ".join(missing) if missing else None


def key_missing_error(models: Iterable[ModelSnap]) -> ProviderKeyMissing:
    parts = []
    for m in models:
        var = m.provider.api_key_env
        parts.append(
            f"{m.name} (provider {m.provider.name}: environment variable {var} is not set)"
            if var
            else f"{m.name} (provider {m.provider.name} has no key variable configured)"
        )
    return ProviderKeyMissing("No API key for " + "; ".join(parts) + ".")


def _cost_key(model: ModelSnap, tokens_in: int, tokens_out: int) -> tuple[int, Decimal]:
    if not model.price_known:
        return (1, Decimal(0))  # unknown price sorts last
    assert model.input_price_per_1k is not None and model.output_price_per_1k is not None
    return (0, model.input_price_per_1k * tokens_in + model.output_price_per_1k * tokens_out)


def rank(
    models: list[ModelSnap],
    *,
    optimize_for: str,
    tokens_in: int,
    tokens_out: int,
    latency_p50: Mapping[str, float],
    quality: Mapping[str, float],
) -> list[ModelSnap]:
    if optimize_for == "cost":
        return sorted(models, key=lambda m: (*_cost_key(m, tokens_in, tokens_out), m.latency_ms, m.name))
    if optimize_for == "latency":
        return sorted(models, key=lambda m: (latency_p50.get(m.name, float(m.latency_ms)), m.name))

    # quality: measured scores (higher better) first, then the operator's rank (1 best), then unranked.
    def quality_key(m: ModelSnap) -> tuple[int, float, str]:
        if m.name in quality:
            return (0, -quality[m.name], m.name)
        if m.quality_rank is not None:
            return (1, float(m.quality_rank), m.name)
        return (2, 0.0, m.name)

    return sorted(models, key=quality_key)


def candidates_select(
    snap: Snapshot,
    *,
    capabilities: Iterable[str],
    optimize_for: str,
    tokens_needed: int,
    tokens_out: int,
    latency_p50: Mapping[str, float],
    quality: Mapping[str, float],
) -> list[ModelSnap]:
    """Every model able to serve the request, best first; raises when there is none.

    Raises InvalidRequest (prompt longer than every capable model's window),
    ProviderKeyMissing (the capable models all lack their key), AllAttemptsFailed 503
    (every capable model's circuit is open) or NoCandidate (with `excluded`)."""
    if optimize_for not in OPTIMIZE_FOR:
        raise InvalidRequest(f"optimize_for must be one of {', '.join(OPTIMIZE_FOR)}, not {optimize_for!r}.")
    required = sorted(set(capabilities))
    unknown = [c for c in required if c not in snap.capabilities]
    wanted = ", ".join(required) or "(none)"
    excluded: dict[str, str] = {}
    categories: dict[str, str] = {}
    usable: list[ModelSnap] = []
    embedding = EMBEDDING in required
    for model in snap.models.values():
        problem = model_unusable(model)
        missing = [c for c in required if c not in model.capabilities]
        if problem is not None and problem[0] == "disabled":
            categories[model.name], excluded[model.name] = problem
        elif not embedding and EMBEDDING in model.capabilities:
            # Chat never selects an embedding model (nor embeddings a chat one: `missing`).
            categories[model.name] = "capability"
            excluded[model.name] = "an embedding model"
        elif missing:
            categories[model.name] = "capability"
            excluded[model.name] = f"lacks capabilities: {', '.join(missing)}"
        elif problem is not None:
            categories[model.name], excluded[model.name] = problem
        elif model.context_window < tokens_needed:
            categories[model.name] = "context"
            excluded[model.name] = f"context window {model.context_window} < {tokens_needed} tokens needed"
        elif breaker_would_skip(model.name):
            categories[model.name] = "circuit"
            excluded[model.name] = "circuit open"
        else:
            usable.append(model)
    if usable:
        return rank(
            usable,
            optimize_for=optimize_for,
            tokens_in=max(tokens_needed - tokens_out, 0),
            tokens_out=tokens_out,
            latency_p50=latency_p50,
            quality=quality,
        )
    capable = {name: cat for name, cat in categories.items() if cat not in ("disabled", "capability")}
    if unknown:
        message = (
            f"No model has the capabilities {wanted}: {', '.join(unknown)} is not a configured capability."
        )
        raise NoCandidate(message, excluded=excluded)
    if capable and all(cat == "context" for cat in capable.values()):
        largest = max(snap.models[n].context_window for n in capable)
        raise InvalidRequest(
            f"The prompt needs about {tokens_needed} tokens, more than the context window of every model "
            f"with capabilities {wanted} (largest: {largest})."
        )
    if capable and all(cat == "key" for cat in capable.values()):
        raise key_missing_error(snap.models[n] for n in capable)
    if capable and all(cat == "circuit" for cat in capable.values()):
        raise AllAttemptsFailed(
            f"Every model with capabilities {wanted} has its circuit open: {', '.join(sorted(capable))}.",
            http_status=503,
        )
    detail = "; ".join(f"{name}: {why}" for name, why in sorted(excluded.items())) or "no models configured"
    raise NoCandidate(f"No model can serve capabilities {wanted} ({detail}).", excluded=excluded)
