"""What the attempts of one request share (`Trace`), one entry of a plan (`Step`), trace ids."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from routing.engine.config import ModelSnap, RouteSnap
from routing.messages import NO_CHAT_OPTIONS, ChatOptions
from routing.sampling import NO_SAMPLING, SamplingOptions

Messages = list[dict[str, Any]]


# Trace ids are uuid4 hex drawn from a generator seeded once from the OS (and again in a
# forked child): os.urandom per call costs more than the rest of the engine's bookkeeping.
_ids = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _ids.seed(os.urandom(32)))


_V4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_V4_SET = (0x8000 << 48) | (4 << 76)  # RFC 4122 variant, version 4 (as uuid.UUID(version=4) sets them)


def trace_id_new() -> str:
    return f"{(_ids.getrandbits(128) & _V4_CLEAR) | _V4_SET:032x}"


def conf(name: str, default: Any) -> Any:
    """One of the engine's settings (`ORCHESTRATOR[name]`), read at the time of the call."""
    return settings.ORCHESTRATOR.get(name, default)


@dataclass
class Trace:
    """What every attempt of one request shares."""

    trace_id: str = field(default_factory=trace_id_new)
    source: str = "api"
    api_key_id: int | None = None
    role: str = ""  # the caller's label; empty: primary/fallback/consensus/judge by position
    endpoint: str = ""  # the gateway endpoint the call came through ("chat.completions", "embeddings", …)
    route: RouteSnap | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    sampling: SamplingOptions = NO_SAMPLING  # top_p, stop, seed, …: the same for every attempt
    chat: ChatOptions = NO_CHAT_OPTIONS  # tools, tool_choice, n, logprobs, …: likewise
    # Capabilities the request itself needs: vision (images), tool_use (tools or tool turns).
    needs: tuple[str, ...] = ()
    system: str | None = None  # a system prompt override (playground)
    created_at: datetime | None = None  # backdate records (simulated traffic)
    processor_options: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    counters: dict[str, int] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # model → the param its kind refused

    def next_attempt(self, model: str) -> int:
        n = self.counters.get(model, 0) + 1
        self.counters[model] = n
        return n

    def record_time(self) -> datetime:
        if self.created_at is not None:
            return self.created_at + timedelta(seconds=time.monotonic() - self.started)
        return timezone.now()


@dataclass
class Step:
    model: ModelSnap
    role: str = "primary"
    chain_name: str = ""
    chain_step: int | None = None
    timeout_s: float | None = None
