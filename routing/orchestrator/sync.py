"""The sync API: the plain names (route, complete, …) for Django views, Celery tasks and
scripts, each running its async twin on an event loop (re-exported by `routing.orchestrator`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import SyncToAsync, async_to_sync

from metrics.services import call_records_flush
from routing.engine import stats
from routing.engine.config import snapshot_get
from routing.engine.selection import OPTIMIZE_FOR, candidates_select
from routing.engine.types import ConsensusResult, Result
from routing.errors import InvalidRequest, OrchestratorError
from routing.orchestrator.calls import (
    Messages,
    acomplete,
    aconsensus,
    aexecute_parallel,
    aexecute_with_fallback,
    aroute,
)
from routing.orchestrator.embeddings import EmbeddingResult, aembed
from routing.providers.registry import aclose_clients

T = TypeVar("T")


def select_model(capabilities: list[str], *, optimize_for: str = "cost", tokens_needed: int = 0) -> str:
    """Sync twin of `aselect_model` (no event loop needed; reads cached config)."""
    _no_running_loop("select_model")
    if optimize_for not in OPTIMIZE_FOR:
        raise InvalidRequest(f"optimize_for must be one of {', '.join(OPTIMIZE_FOR)}, not {optimize_for!r}.")
    snap = snapshot_get()
    latency = stats.latency_p50s_sync(frozenset(snap.models)) if optimize_for == "latency" else {}
    quality = stats.quality_scores_sync(capabilities) if optimize_for == "quality" else {}
    ranked = candidates_select(
        snap,
        capabilities=list(capabilities),
        optimize_for=optimize_for,
        tokens_needed=tokens_needed,
        tokens_out=0,
        latency_p50=latency,
        quality=quality,
    )
    return ranked[0].name


# -- Sync wrappers ------------------------------------------------------------------------


def _no_running_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"orchestrator.{name}() is the sync API and cannot run inside a running event loop "
        f"(an async view, a coroutine): use `await orchestrator.a{name}(...)` there."
    )


def _outer_loop_running() -> bool:
    """True when we run inside sync_to_async under a live event loop (async_to_sync reuses it)."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    pid = getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None)
    return loop is not None and pid == os.getpid() and loop.is_running()


def _run_sync(name: str, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    _no_running_loop(name)
    owns_loop = not _outer_loop_running()

    async def main() -> T:
        try:
            return await fn(*args, **kwargs)
        finally:
            if owns_loop:
                # The loop ends with this call: close the provider clients made on it.
                await aclose_clients()

    try:
        return async_to_sync(main)()
    finally:
        call_records_flush()


def route(task_type: str, content: str | Messages, **kwargs: Any) -> Result:
    return _run_sync("route", aroute, task_type, content, **kwargs)


def complete(messages: Messages, **kwargs: Any) -> Result:
    return _run_sync("complete", acomplete, messages, **kwargs)


def execute_with_fallback(messages: Messages, *, chain: str = "default", **kwargs: Any) -> Result:
    return _run_sync("execute_with_fallback", aexecute_with_fallback, messages, chain=chain, **kwargs)


def consensus(messages: Messages, **kwargs: Any) -> ConsensusResult:
    return _run_sync("consensus", aconsensus, messages, **kwargs)


def embed(input: str | list[str] | list[int] | list[list[int]], **kwargs: Any) -> EmbeddingResult:
    return _run_sync("embed", aembed, input, **kwargs)


def execute_parallel(tasks: list[dict[str, Any]], **kwargs: Any) -> list[Result | OrchestratorError]:
    return _run_sync("execute_parallel", aexecute_parallel, tasks, **kwargs)


def records_flush() -> None:
    """Sync twin of `arecords_flush`."""
    call_records_flush()
