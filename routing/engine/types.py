"""The engine's normalized results: one shape for every provider kind."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

from routing.providers.base import ToolCallDelta, Usage

__all__ = [
    "AttemptInfo",
    "CallStatus",
    "ConsensusResult",
    "MemberOutcome",
    "Result",
    "SkipInfo",
    "StreamEvent",
    "ToolCallDelta",
    "Usage",
]

# "pending": an attempt that has started (the `attempt` stream event); records never carry it.
CallStatus = Literal["ok", "error", "timeout", "cancelled", "pending"]


@dataclass
class AttemptInfo:
    """One attempt at one model within a request (there is one CallRecord per attempt)."""

    model: str
    attempt: int
    status: CallStatus
    error_class: str = ""
    error: str = ""
    http_status: int | None = None
    latency_ms: float | None = None
    chain_step: int | None = None
    record_id: int | None = None
    # Seconds the engine waited before retrying this model (retry-after or backoff); None: no retry.
    wait_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SkipInfo:
    """A model of the plan that the engine passed over without calling it (so no CallRecord):
    category "disabled" (model or provider), "key" (its provider's key variable is unset),
    "circuit" (its circuit is open), "capability" (it lacks one the request needs: reason
    "no vision", "no tool_use") or "unsupported" (its kind cannot honour the request's
    sampling or chat options); `reason` says so in words."""

    model: str
    category: str
    reason: str
    chain_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Result:
    text: str  # after the route's post-processor
    model: str  # the ModelConfig name that answered
    trace_id: str
    raw_text: str = ""  # before post-processing
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal | None = None  # None: price unknown (flagged), never a silent 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    finish_reason: str | None = None
    attempts: list[AttemptInfo] = field(default_factory=list)
    prompt_version_id: int | None = None
    simulated: bool = False
    skipped: list[SkipInfo] = field(default_factory=list)  # models passed over, in plan order
    # OpenAI's shape: [{"id", "type": "function", "function": {"name", "arguments"}}]; never post-processed.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: dict[str, Any] | None = None
    # n > 1: choices 1… as {"text", "finish_reason", "tool_calls", "logprobs"} (choice 0 is this Result).
    more_choices: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class MemberOutcome:
    model: str
    status: CallStatus
    result: Result | None = None
    error: str = ""


@dataclass
class ConsensusResult:
    text: str
    model: str | None  # the member whose answer won (None if no winner)
    trace_id: str
    aggregator: str
    explanation: str  # how the aggregate was reached, in words
    members: list[MemberOutcome] = field(default_factory=list)
    votes: dict[str, int] = field(default_factory=dict)
    judge: Result | None = None
    cost_usd: Decimal | None = None


StreamEventKind = Literal["attempt", "delta", "tool_call", "attempt_failed", "done", "error"]


@dataclass
class StreamEvent:
    """`attempt` a model starts; `delta` text; `tool_call` a piece of a tool call (`tool_call`:
    the first piece of call `index` has its id and name, later ones argument fragments),
    interleaved with `delta` events as the provider sent them; `attempt_failed` before the
    first token (the engine moves on); `done` carries the final Result (its `tool_calls`
    assembled, finish_reason "tool_calls"); `error` ends the stream.

    `skipped` (on `attempt` and `error`): the models the engine passed over since the
    previous event that could carry them (disabled, no key, circuit open), in plan order."""

    kind: StreamEventKind
    text: str = ""
    model: str = ""
    attempt: AttemptInfo | None = None
    result: Result | None = None
    error: str = ""
    error_class: str = ""
    http_status: int | None = None  # `error`: the status a gateway would answer with
    trace_id: str = ""
    skipped: list[SkipInfo] = field(default_factory=list)
    tool_call: ToolCallDelta | None = None
