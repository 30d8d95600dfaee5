"""The Python API: the seed's ModelOrchestrator, TaskRouter, ParallelOrchestrator and
FallbackChain in one place, reading config from the database. Async functions are the
engine; the plain names are sync wrappers for Django views, Celery tasks and scripts.

    from routing import orchestrator
    r = orchestrator.route("code_review", python_code)   # r.text, r.model, r.trace_id, r.cost_usd, r.attempts

Keyword arguments common to every call:
    source       "api" | "playground" | "gateway" | "batch" | "drill" | "simulation" (stored on records)
    api_key_id   gateway.ApiKey id the spend is attributed to
    trace_id     join an existing trace (a new one is made otherwise)
    temperature, max_tokens
    role         a label stored on the records (e.g. "arena", "cell")

CONTRACT STUB: implemented by the engine work (issue 3). The signatures are fixed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from routing.engine.types import ConsensusResult, Result, StreamEvent
from routing.errors import OrchestratorError

Messages = list[dict[str, Any]]


async def aroute(task_type: str, content: str, **kwargs: Any) -> Result:
    raise NotImplementedError


async def acomplete(
    messages: Messages,
    *,
    model: str | None = None,
    capabilities: list[str] | None = None,
    optimize_for: str = "cost",
    chain: str | None = None,
    **kwargs: Any,
) -> Result:
    raise NotImplementedError


async def aexecute_with_fallback(messages: Messages, *, chain: str = "default", **kwargs: Any) -> Result:
    raise NotImplementedError


async def aconsensus(
    messages: Messages,
    *,
    models: list[str],
    aggregator: str = "majority",
    judge_model: str | None = None,
    **kwargs: Any,
) -> ConsensusResult:
    raise NotImplementedError


async def aexecute_parallel(
    tasks: list[dict[str, Any]], *, concurrency: int = 8, **kwargs: Any
) -> list[Result | OrchestratorError]:
    raise NotImplementedError


def astream(
    messages: Messages | None = None,
    *,
    model: str | None = None,
    task_type: str | None = None,
    content: str | None = None,
    chain: str | None = None,
    capabilities: list[str] | None = None,
    optimize_for: str = "cost",
    **kwargs: Any,
) -> AsyncIterator[StreamEvent]:
    raise NotImplementedError


def select_model(capabilities: list[str], *, optimize_for: str = "cost", tokens_needed: int = 0) -> str:
    raise NotImplementedError


async def arecords_flush() -> None:
    """Wait until every CallRecord of finished calls is in the database."""
    raise NotImplementedError


def route(task_type: str, content: str, **kwargs: Any) -> Result:
    raise NotImplementedError


def complete(messages: Messages, **kwargs: Any) -> Result:
    raise NotImplementedError


def execute_with_fallback(messages: Messages, *, chain: str = "default", **kwargs: Any) -> Result:
    raise NotImplementedError


def consensus(messages: Messages, **kwargs: Any) -> ConsensusResult:
    raise NotImplementedError


def execute_parallel(tasks: list[dict[str, Any]], **kwargs: Any) -> list[Result | OrchestratorError]:
    raise NotImplementedError
