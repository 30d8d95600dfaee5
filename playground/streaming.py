"""Server-sent events for the playground: one stream per column, one for a consensus.

Each stream claims its column (pending → streaming, a conditional UPDATE) so a reload or a
second tab never calls the model twice; later openings get a snapshot of the saved answer.
Deltas go to the browser as they arrive and the column is written once, at the end.

Cancellation: when the browser closes the EventSource (Stop, leaving the page), uvicorn
reports the disconnect, Django cancels the response task, and the CancelledError (or the
generator's close) reaches the engine's `astream` generator, which records the attempt as
cancelled. We close that generator explicitly too and save the column as cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from playground.models import ColumnStatus, PlaygroundColumn, PlaygroundRun, RunMode
from playground.selectors import billed, route_active_prompt
from routing import orchestrator

logger = logging.getLogger(__name__)
KEEPALIVE_S = 10.0


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=json_default)}\n\n"


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def user_message(run: PlaygroundRun) -> dict[str, Any]:
    """The prompt as a user message; with an attached image, a text part then the image."""
    if not run.image:
        return {"role": "user", "content": run.prompt}
    return {
        "role": "user",
        "content": [
            {"type": "text", "text": run.prompt},
            {"type": "image_url", "image_url": {"url": run.image}},
        ],
    }


def run_messages(run: PlaygroundRun) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if run.system_prompt.strip():
        messages.append({"role": "system", "content": run.system_prompt})
    messages.append(user_message(run))
    return messages


def attempt_dict(attempt: Any) -> dict[str, Any]:
    """An engine attempt as the page shows it (no record id)."""
    if attempt is None:
        return {}
    data = attempt.to_dict() if hasattr(attempt, "to_dict") else dict(attempt)
    data.pop("record_id", None)
    return data


def _skip_dict(skip: Any) -> dict[str, Any]:
    """A model the engine passed over (no key, disabled, circuit open), as a step of the path."""
    return {**skip.to_dict(), "status": "skipped"}


# Before an arena vote these would tell the models apart (a fast first token, a price, a
# "simulated" badge, a tokenizer's counts): the browser gets none of them.
BLIND_HIDDEN = ("ttft_ms", "latency_ms", "input_tokens", "output_tokens", "cost_usd")


def column_snapshot(column: PlaygroundColumn, *, blind: bool) -> dict[str, Any]:
    data = {
        "status": column.status,
        "text": column.text,
        "error": column.error,
        "error_class": column.error_class,
        "model": column.answered_by,
        "ttft_ms": column.ttft_ms,
        "latency_ms": column.latency_ms,
        "input_tokens": column.input_tokens,
        "output_tokens": column.output_tokens,
        "cost_usd": None if column.cost_usd is None else str(column.cost_usd),
        "simulated": column.simulated,
        "attempts": column.attempts,
        "tool_calls": column.tool_calls,
    }
    return public_figures(data, blind=blind, hide=column.target_model)


async def billed_figures(**filters: str) -> dict[str, Any]:
    """Tokens and cost billed by the calls matching `filters` (see playground.selectors.billed), for
    an answer that ended without a result: the engine put what it cost in its call records only.
    Writes the records queued so far first (a cancelled attempt's record waits for a flush)."""
    try:
        await orchestrator.arecords_flush()
        figures = await sync_to_async(billed)(**filters)
    except Exception:  # the column still gets saved, without figures
        logger.warning("could not read what %s billed", filters, exc_info=True)
        return {}
    if figures is None:
        return {}
    return {
        "input_tokens": figures.input_tokens,
        "output_tokens": figures.output_tokens,
        "cost_usd": figures.cost_usd,
    }


async def _stream_kwargs(run: PlaygroundRun, column: PlaygroundColumn) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "source": "playground",
        "trace_id": column.trace_id,
        "temperature": run.temperature,
        "max_tokens": run.max_tokens,
    }
    if run.mode == RunMode.ARENA:
        kwargs["role"] = "arena"
    if run.tools:
        kwargs["tools"] = run.tools
        if run.tool_choice is not None:
            kwargs["tool_choice"] = run.tool_choice
    if run.mode == RunMode.ROUTE:
        kwargs["task_type"] = run.task_type
        # A route takes the prompt's text, or the whole user message when an image comes with it.
        kwargs["content"] = [user_message(run)] if run.image else run.prompt
        active = await _route_prompt_text(run)
        if run.system_prompt.strip() and run.system_prompt != active:
            kwargs["system"] = run.system_prompt
        return kwargs
    kwargs["messages"] = run_messages(run)
    if run.mode == RunMode.CHAIN:
        kwargs["chain"] = run.chain_name
    else:
        kwargs["model"] = column.target_model
    return kwargs


@sync_to_async
def _route_prompt_text(run: PlaygroundRun) -> str:
    prompt = route_active_prompt(route=run.route)
    return prompt.system_prompt if prompt is not None else ""


async def column_events(*, column: PlaygroundColumn, may_run: bool) -> AsyncIterator[str]:
    """SSE for one column: live from the engine when this request claims it, else a snapshot."""
    run = column.run
    yield "retry: 86400000\n\n"  # the page closes the stream itself; never auto-reconnect
    blind = run.mode == RunMode.ARENA and not await run.votes.aexists()
    claimed = may_run and (
        await PlaygroundColumn.objects.filter(pk=column.pk, status=ColumnStatus.PENDING).aupdate(
            status=ColumnStatus.STREAMING, started_at=timezone.now()
        )
    )
    if not claimed:
        await column.arefresh_from_db()
        yield sse("snapshot", column_snapshot(column, blind=blind))
        yield sse("end", {})
        return

    started = time.perf_counter()
    text_parts: list[str] = []
    attempts: list[dict[str, Any]] = []
    final: dict[str, Any] = {"status": ColumnStatus.ERROR}
    saved = False
    first_token_ms: float | None = None
    stream = None
    try:
        kwargs = await _stream_kwargs(run, column)
        stream = orchestrator.astream(**kwargs)
        yield sse("status", {"status": ColumnStatus.STREAMING})
        async for event in stream:
            if event.kind == "delta":
                if first_token_ms is None:
                    first_token_ms = (time.perf_counter() - started) * 1000
                text_parts.append(event.text)
                yield sse("delta", {"text": event.text})
            elif event.kind == "tool_call" and event.tool_call is not None:
                # A piece of a tool call, shown as it arrives (the first piece of call `index`
                # names it, later ones add argument text); "done" then carries them whole.
                if first_token_ms is None:
                    first_token_ms = (time.perf_counter() - started) * 1000
                piece = event.tool_call
                yield sse(
                    "tool_call", {"index": piece.index, "name": piece.name, "arguments": piece.arguments}
                )
            elif event.kind == "attempt":
                info = {} if blind else attempt_dict(event.attempt) or {"model": event.model}
                if event.skipped:
                    # The path shows the models the engine passed over before this one.
                    skips = [_skip_dict(s) for s in event.skipped]
                    attempts.extend(skips)
                    if not blind:
                        info["skipped"] = skips
                yield sse("attempt", info)
            elif event.kind == "attempt_failed":
                # Saved with the model's name (the permalink shows it after an arena vote);
                # sent without it while the round is blind.
                info = attempt_dict(event.attempt) or {"model": event.model, "status": "error"}
                info.setdefault("error", event.error)
                info.setdefault("error_class", event.error_class)
                if not info.get("error"):
                    info["error"] = event.error
                attempts.append(info)
                # Text sent before a failed attempt is discarded by the engine's fallback.
                text_parts.clear()
                yield sse("attempt_failed", {} if blind else info)
            elif event.kind == "done" and event.result is not None:
                result = event.result
                usage = result.usage
                # The path so far (skips and failed attempts, in order) and the answering attempt.
                attempts = attempts + [attempt_dict(a) for a in result.attempts[-1:]]
                final = {
                    "status": ColumnStatus.OK,
                    "text": result.text,
                    "model": result.model,
                    "ttft_ms": result.ttft_ms if result.ttft_ms is not None else first_token_ms,
                    "latency_ms": result.latency_ms or (time.perf_counter() - started) * 1000,
                    "input_tokens": usage.input_tokens,
                    "output_tokens": usage.output_tokens,
                    "cost_usd": result.cost_usd,
                    "simulated": result.simulated,
                    "attempts": attempts,
                    "tool_calls": list(result.tool_calls or []),
                }
                # Saved before the browser hears "done", so a vote or reload right after sees it.
                saved = await column_finish(column.pk, final)
                yield sse("done", public_figures(final, blind=blind, hide=column.target_model))
            elif event.kind == "error":
                attempts.extend(_skip_dict(s) for s in event.skipped)
                final = {
                    "status": ColumnStatus.ERROR,
                    "text": "".join(text_parts),
                    "error": event.error or "The model failed.",
                    "error_class": event.error_class,
                    "model": event.model,
                    "ttft_ms": first_token_ms,
                    "latency_ms": (time.perf_counter() - started) * 1000,
                    "attempts": attempts,
                }
                final.update(await billed_figures(trace_id=column.trace_id))
                saved = await column_finish(column.pk, final)
                yield sse("error", public_figures(final, blind=blind, hide=column.target_model))
        if not saved:
            final.update(error="The stream ended without an answer.", text="".join(text_parts))
            final.update(await billed_figures(trace_id=column.trace_id))
            saved = await column_finish(column.pk, final)
            yield sse("error", public_figures(final, blind=blind, hide=column.target_model))
    except (asyncio.CancelledError, GeneratorExit):
        final = {
            "status": ColumnStatus.CANCELLED,
            "text": "".join(text_parts),
            "error": "Stopped before the answer finished.",
            "ttft_ms": first_token_ms,
            "latency_ms": (time.perf_counter() - started) * 1000,
            "attempts": attempts,
        }
        raise
    except Exception as exc:  # an engine error before or outside the stream: show it in the column
        final = {
            "status": ColumnStatus.ERROR,
            "text": "".join(text_parts),
            "error": getattr(exc, "message", None) or str(exc) or type(exc).__name__,
            "error_class": getattr(exc, "code", "") or type(exc).__name__,
            "ttft_ms": first_token_ms,
            "latency_ms": (time.perf_counter() - started) * 1000,
            "attempts": [a.to_dict() for a in getattr(exc, "attempts", [])] or attempts,
        }
        final.update(await billed_figures(trace_id=column.trace_id))
        saved = await column_finish(column.pk, final)
        yield sse("error", public_figures(final, blind=blind, hide=column.target_model))
    finally:
        if stream is not None and hasattr(stream, "aclose"):
            with contextlib.suppress(Exception):  # closing must never hide the real outcome
                await stream.aclose()
        if not saved:
            # Cancelled (or cut off): the stream is closed, so the engine has recorded the
            # attempt with the tokens it used. The column shows what that billed.
            with contextlib.suppress(asyncio.CancelledError):
                final.update(await billed_figures(trace_id=column.trace_id))
            await column_finish(column.pk, final)
    yield sse("end", {})


def public_figures(final: dict[str, Any], *, blind: bool, hide: str = "") -> dict[str, Any]:
    """What the browser may see. Blind (arena, before the vote): nothing that tells the models
    apart (no name, path, timings, token counts, cost or "simulated"), and the model's name
    scrubbed from error messages."""
    data = dict(final)
    if blind:
        data["model"] = ""
        data["simulated"] = False
        data["attempts"] = []
        data.update(dict.fromkeys(BLIND_HIDDEN))
        data = _scrub(data, hide)
    return data


def _scrub(data: dict[str, Any], name: str) -> dict[str, Any]:
    if name and isinstance(data.get("error"), str):
        data["error"] = data["error"].replace(name, "the model")
    return data


# What a stream still saves on a column that Stop already marked cancelled.
KEPT_AFTER_STOP = frozenset(
    {
        "text",
        "ttft_ms",
        "latency_ms",
        "attempts",
        "tool_calls",
        "answered_by",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    }
)


async def column_finish(column_id: int, final: dict[str, Any]) -> bool:
    fields = {
        "status": final["status"],
        "text": final.get("text", ""),
        "error": final.get("error", "")[:4000],
        "error_class": final.get("error_class", "")[:32],
        "answered_by": final.get("model", "") or "",
        "ttft_ms": final.get("ttft_ms"),
        "latency_ms": final.get("latency_ms"),
        "input_tokens": final.get("input_tokens"),
        "output_tokens": final.get("output_tokens"),
        "cost_usd": final.get("cost_usd"),
        "simulated": bool(final.get("simulated", False)),
        "attempts": final.get("attempts", []),
        "tool_calls": final.get("tool_calls", []),
        "finished_at": timezone.now(),
    }
    # A Stop that already marked the column keeps its status; the text and what it billed land.
    updated = await PlaygroundColumn.objects.filter(pk=column_id, status=ColumnStatus.STREAMING).aupdate(
        **fields
    )
    if not updated:
        keep = {k: v for k, v in fields.items() if k in KEPT_AFTER_STOP}
        await PlaygroundColumn.objects.filter(pk=column_id).aupdate(**keep)
    return True
