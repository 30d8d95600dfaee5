"""Turning a caller's request into a Trace and a plan (the ordered steps to try).

Everything here validates input and reads the config snapshot; nothing is sent upstream
and nothing is recorded until the plan runs, so bad input fails cleanly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from metrics.enums import Source
from routing.engine import stats
from routing.engine.config import ModelSnap, RouteSnap, Snapshot
from routing.engine.selection import (
    DEFAULT_OUTPUT_TOKENS,
    OPTIMIZE_FOR,
    candidates_select,
    capability_missing,
    estimate_prompt_tokens,
    key_missing_error,
    model_unusable,
    request_refused,
)
from routing.engine.trace import Messages, Step, Trace
from routing.errors import (
    InvalidRequest,
    NoCandidate,
    UnknownChain,
    UnknownModel,
)
from routing.messages import (
    CHAT_OPTION_FIELDS,
    NO_CHAT_OPTIONS,
    ChatOptions,
    ParsedMessages,
    chat_options,
    messages_parse,
    text_check,
)
from routing.models import EMBEDDING
from routing.sampling import NO_SAMPLING, SAMPLING_FIELDS, SamplingOptions, sampling_options

COMMON_KWARGS = frozenset(
    {
        "source",
        "api_key_id",
        "trace_id",
        "temperature",
        "max_tokens",
        "max_completion_tokens",
        "role",
        "system",
        "created_at",
        "processor_options",
        "sampling",
        "endpoint",
        *SAMPLING_FIELDS,
        "chat",
        *CHAT_OPTION_FIELDS,
    }
)
SOURCES = frozenset(Source.values)
SELECTION_FALLBACKS = 3  # a selection without a chain tries up to this many ranked candidates


def trace_make(kwargs: dict[str, Any], *, route: RouteSnap | None = None, fn: str = "") -> Trace:
    unknown = sorted(set(kwargs) - COMMON_KWARGS)
    if unknown:
        raise TypeError(f"{fn}() got unexpected keyword argument(s): {', '.join(unknown)}")
    source = kwargs.get("source") or Source.API
    if source not in SOURCES:
        raise InvalidRequest(f"source must be one of {', '.join(Source.values)}, not {source!r}.")
    trace_id = kwargs.get("trace_id")
    if trace_id is not None and (not isinstance(trace_id, str) or not 0 < len(trace_id) <= 32):
        raise InvalidRequest("trace_id must be a string of 1 to 32 characters (e.g. uuid4().hex).")
    temperature = kwargs.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise InvalidRequest(f"temperature must be a number from 0 to 2, not {temperature!r}.")
    # max_completion_tokens: OpenAI's newer name for max_tokens (it wins when both are given).
    param = "max_completion_tokens" if kwargs.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = kwargs.get(param)
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise InvalidRequest(f"{param} must be a positive integer, not {max_tokens!r}.", param=param)
    system = kwargs.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise InvalidRequest("system must be a string (the system prompt).", param="system")
        text_check(system, "system")
    created_at = kwargs.get("created_at")
    if created_at is not None and not isinstance(created_at, datetime):
        raise InvalidRequest("created_at must be a datetime.")
    endpoint = kwargs.get("endpoint") or ""
    if not isinstance(endpoint, str) or len(endpoint) > 32:
        raise InvalidRequest("endpoint must be a string of at most 32 characters (e.g. 'embeddings').")
    api_key_id = kwargs.get("api_key_id")
    if api_key_id is not None and not isinstance(api_key_id, int):
        raise InvalidRequest("api_key_id must be an ApiKey id (an integer).")
    trace = Trace(
        sampling=sampling_get(kwargs),
        chat=chat_get(kwargs),
        source=str(source),
        api_key_id=api_key_id,
        role=str(kwargs.get("role") or "")[:16],
        endpoint=endpoint,
        route=route,
        temperature=temperature,
        max_tokens=max_tokens,
        system=system,
        created_at=created_at,
        processor_options=dict(kwargs.get("processor_options") or {}),
    )
    if trace_id:
        trace.trace_id = trace_id
    return trace


def sampling_get(kwargs: dict[str, Any]) -> SamplingOptions:
    """The call's SamplingOptions: `sampling=` (already a SamplingOptions, e.g. from the
    gateway's validation) or the keyword arguments top_p, stop, seed, presence_penalty,
    frequency_penalty, response_format, user (validated here), not both."""
    sampling = kwargs.get("sampling")
    named = SAMPLING_FIELDS.intersection(kwargs)
    if sampling is not None:
        if not isinstance(sampling, SamplingOptions):
            raise InvalidRequest("sampling must be a routing.sampling.SamplingOptions.", param="sampling")
        if named:
            raise TypeError(f"Pass sampling= or {', '.join(sorted(named))}, not both.")
        return sampling
    return sampling_options(kwargs) if named else NO_SAMPLING


def chat_get(kwargs: dict[str, Any]) -> ChatOptions:
    """The call's ChatOptions: `chat=` (already a ChatOptions, e.g. from the gateway's
    validation) or the keyword arguments tools, tool_choice, parallel_tool_calls, n, logprobs,
    top_logprobs, reasoning_effort (validated here), not both."""
    chat = kwargs.get("chat")
    named = CHAT_OPTION_FIELDS.intersection(kwargs)
    if chat is not None:
        if not isinstance(chat, ChatOptions):
            raise InvalidRequest("chat must be a routing.messages.ChatOptions.", param="chat")
        if named:
            raise TypeError(f"Pass chat= or {', '.join(sorted(named))}, not both.")
        return chat
    return chat_options(kwargs) if named else NO_CHAT_OPTIONS


def _has_content(message: dict[str, Any]) -> bool:
    content = message.get("content")
    if isinstance(content, str):
        return bool(content.strip()) or bool(message.get("tool_calls"))
    if isinstance(content, list):
        return any(p.get("type") != "text" or p.get("text", "").strip() for p in content)
    return bool(message.get("tool_calls"))


def messages_check(messages: Any) -> Messages:
    """The canonical messages (`routing.messages.messages_parse`; a list it already made is
    taken as it is), with something to send in them."""
    if type(messages) is not ParsedMessages:
        messages = messages_parse(messages)
    if not any(_has_content(m) for m in messages):
        raise InvalidRequest("messages are empty: nothing to send.", param="messages")
    return messages


def needs_set(trace: Trace, messages: Messages) -> None:
    """Note on the trace the capabilities the request itself needs: `vision` when its
    messages hold an image, `tool_use` when it offers tools (and may call them) or its
    history has tool calls or tool results."""
    tools, vision = trace.chat.wants_tools, False
    for m in messages:
        if not tools and (m.get("tool_calls") or m["role"] == "tool"):
            tools = True
        content = m.get("content")
        if not vision and isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
            vision = True
    trace.needs = (("vision",) if vision else ()) + (("tool_use",) if tools else ())


def needs_why(needs: tuple[str, ...]) -> str:
    """Why the request needs them, in words."""
    why = {"vision": "its messages hold images", "tool_use": "it offers tools or has tool turns"}
    return "; ".join(why.get(c, c) for c in needs)


def tokens_needed(trace: Trace, messages: Messages, system_len: int = 0) -> tuple[int, int]:
    """(prompt tokens + output budget, output budget) for window checks and cost ranking."""
    prompt = estimate_prompt_tokens(messages) + (system_len + 3) // 4
    out = trace.max_tokens or 0
    return prompt + out, out or DEFAULT_OUTPUT_TOKENS


def model_get(snap: Snapshot, name: str) -> ModelSnap:
    model = snap.models.get(name)
    if model is None:
        known = ", ".join(sorted(snap.models)) or "none configured"
        raise UnknownModel(f"Unknown model {name!r}. Known models: {known}.")
    return model


def chain_steps(snap: Snapshot, name: str) -> list[Step]:
    chain = snap.chains.get(name)
    if chain is None:
        known = ", ".join(sorted(snap.chains)) or "none configured"
        raise UnknownChain(f"Unknown fallback chain {name!r}. Known chains: {known}.")
    return [
        Step(
            model=snap.models[s.model_name],
            chain_name=chain.name,
            chain_step=s.position,
            timeout_s=s.timeout_s,
        )
        for s in chain.steps
        if s.model_name in snap.models
    ]


def explicit_model_check(
    model: ModelSnap,
    needed: int,
    *,
    alone: bool,
    trace: Trace | None = None,
    embedding: bool = False,
) -> None:
    """A model the caller named: say plainly why it cannot be used when it is the only one
    (its kind refuses the request's options, it lacks a capability the request needs, it is
    disabled or has no key, the prompt is too long for it). A chat call (`embedding` False)
    never takes an embedding model (routing.engine.embed checks the reverse)."""
    if not embedding and EMBEDDING in model.capabilities:
        raise InvalidRequest(
            f"{model.name} is an embedding model: it answers POST /v1/embeddings "
            "(orchestrator.embed), not chat. Name a chat model.",
            param="model",
            code="model_not_chat",
        )
    refused = request_refused(model, trace.sampling, trace.chat) if alone and trace is not None else None
    if refused is not None:
        raise InvalidRequest(
            f"{refused[1]}. Name a model that can, or a chain with one.",
            param=refused[0],
            code="unsupported_parameter",
        )
    missing = capability_missing(model, trace.needs) if alone and trace is not None else None
    if missing is not None and trace is not None:
        raise NoCandidate(
            f"Model {model.name} cannot serve this request: it has {missing} capability "
            f"({needs_why(trace.needs)}). Name a model that has it, or a chain with one.",
            excluded={model.name: missing},
        )
    problem = model_unusable(model)
    if problem is not None and alone:
        if problem[0] == "key":
            raise key_missing_error([model])
        raise NoCandidate(
            f"Model {model.name} cannot be used: {problem[1]}.", excluded={model.name: problem[1]}
        )
    if model.context_window < needed and alone:
        raise InvalidRequest(
            f"The prompt needs about {needed} tokens, more than {model.name}'s context window "
            f"({model.context_window})."
        )


async def selection(
    snap: Snapshot, *, capabilities: list[str], optimize_for: str, needed: int, out: int
) -> list[ModelSnap]:
    if optimize_for not in OPTIMIZE_FOR:
        raise InvalidRequest(f"optimize_for must be one of {', '.join(OPTIMIZE_FOR)}, not {optimize_for!r}.")
    latency = await stats.latency_p50s(frozenset(snap.models)) if optimize_for == "latency" else {}
    quality = await stats.quality_scores(capabilities) if optimize_for == "quality" else {}
    return candidates_select(
        snap,
        capabilities=capabilities,
        optimize_for=optimize_for,
        tokens_needed=needed,
        tokens_out=out,
        latency_p50=latency,
        quality=quality,
    )


def refusal_filter(ranked: list[ModelSnap], trace: Trace, *, fallback: bool) -> list[ModelSnap]:
    """The selected models whose kind can honour the trace's sampling and chat options. When
    none can and nothing else would be tried (`fallback` False), an InvalidRequest says why."""
    if trace.sampling is NO_SAMPLING and trace.chat is NO_CHAT_OPTIONS:
        return ranked
    kept = [m for m in ranked if request_refused(m, trace.sampling, trace.chat) is None]
    if ranked and not kept and not fallback:
        refused = [
            r for r in (request_refused(m, trace.sampling, trace.chat) for m in ranked) if r is not None
        ]
        raise InvalidRequest(
            "No model that could answer can honour the request's parameters ("
            + "; ".join(why for _, why in refused)
            + ").",
            param=refused[0][0],
            code="unsupported_parameter",
        )
    return kept


def roles_assign(steps: list[Step]) -> list[Step]:
    seen: set[str] = set()
    out: list[Step] = []
    for step in steps:
        if step.model.name in seen:
            continue
        seen.add(step.model.name)
        step.role = "primary" if not out else "fallback"
        out.append(step)
    return out


def context_filter(steps: list[Step], needed: int) -> list[Step]:
    fitting = [s for s in steps if s.model.context_window >= needed]
    if steps and not fitting:
        largest = max(s.model.context_window for s in steps)
        names = ", ".join(s.model.name for s in steps)
        raise InvalidRequest(
            f"The prompt needs about {needed} tokens, more than the context window of every model "
            f"that could answer ({names}; largest: {largest})."
        )
    return fitting


async def plan_make(
    snap: Snapshot,
    trace: Trace,
    messages: Messages,
    *,
    model: str | None,
    capabilities: list[str] | None,
    optimize_for: str,
    chain: str | None,
) -> list[Step]:
    if capabilities is not None and (
        not isinstance(capabilities, list | tuple) or not all(isinstance(c, str) for c in capabilities)
    ):
        raise InvalidRequest("capabilities must be a list of capability slugs.")
    needs_set(trace, messages)
    system_len = len(trace.system or "")
    needed, out = tokens_needed(trace, messages, system_len)
    steps: list[Step] = []
    chained = chain_steps(snap, chain) if chain else []
    if model:
        explicit = model_get(snap, model)
        explicit_model_check(explicit, needed, alone=not chained, trace=trace)
        steps.append(Step(model=explicit))
    elif not chained:
        wanted = sorted({*(capabilities or []), *trace.needs})
        ranked = await selection(snap, capabilities=wanted, optimize_for=optimize_for, needed=needed, out=out)
        ranked = refusal_filter(ranked, trace, fallback=False)
        steps.extend(Step(model=m) for m in ranked[:SELECTION_FALLBACKS])
    steps.extend(chained)
    return roles_assign(context_filter(steps, needed))
