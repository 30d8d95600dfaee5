"""Task routes: finding one, what it sends (the caller's text or conversation, pre-processed),
and its plan (the route's model or a selection, then its chain)."""

from __future__ import annotations

from typing import Any

from routing.engine.config import RouteSnap, Snapshot
from routing.engine.planning import (
    SELECTION_FALLBACKS,
    chain_steps,
    context_filter,
    explicit_model_check,
    messages_check,
    model_get,
    needs_set,
    refusal_filter,
    roles_assign,
    selection,
    tokens_needed,
)
from routing.engine.trace import Messages, Step, Trace
from routing.errors import AllAttemptsFailed, InvalidRequest, NoCandidate, ProviderKeyMissing, UnknownRoute
from routing.processors import ProcessorRejected, processor_get


def route_get(snap: Snapshot, task_type: str) -> RouteSnap:
    route = snap.routes.get(task_type)
    if route is None:
        known = ", ".join(sorted(snap.routes)) or "none configured"
        raise UnknownRoute(f"Unknown task type {task_type!r}. Known task types: {known}.")
    if not route.enabled:
        raise UnknownRoute(f"Task type {task_type!r} is disabled.")
    return route


def route_messages(route: RouteSnap, content: Any, options: dict[str, Any]) -> Messages:
    """What a route sends (before its prompt): the user's text as one user message, or the
    caller's conversation (canonical messages) with the pre-processor applied to the last
    user message's text."""
    if isinstance(content, str):
        return [{"role": "user", "content": route_content(route, content, options)}]
    if not isinstance(content, list):
        raise InvalidRequest(
            f"Content for task type {route.task_type!r} must be text or a list of messages.",
            param="content",
        )
    messages = messages_check(content)
    if not route.preprocessor:
        return messages
    last = next((i for i in range(len(messages) - 1, -1, -1) if messages[i]["role"] == "user"), None)
    if last is None:
        return messages
    out = list(messages)
    message = dict(out[last])
    parts = message["content"]
    if isinstance(parts, str):
        message["content"] = route_content(route, parts, options)
    else:  # text and images: the text parts, joined, go through the pre-processor once
        text = "\n".join(p["text"] for p in parts if p["type"] == "text")
        if not text.strip():
            return messages  # images only: nothing for a text pre-processor
        others = [p for p in parts if p["type"] != "text"]
        message["content"] = [{"type": "text", "text": route_content(route, text, options)}, *others]
    out[last] = message
    return out


def route_content(route: RouteSnap, content: Any, options: dict[str, Any]) -> str:
    if not isinstance(content, str) or not content.strip():
        raise InvalidRequest(f"Content for task type {route.task_type!r} is empty.")
    if route.preprocessor:
        try:
            content = processor_get(route.preprocessor)(content, **options)
        except KeyError as exc:
            raise InvalidRequest(f"Route {route.task_type!r}: {exc.args[0]}") from None
        except ProcessorRejected as exc:
            raise InvalidRequest(f"Pre-processor {route.preprocessor!r} rejected the input: {exc}") from exc
        if not content.strip():
            raise InvalidRequest(f"Pre-processor {route.preprocessor!r} left nothing to send.")
    return content


async def route_plan(
    snap: Snapshot, trace: Trace, route: RouteSnap, messages: Messages, **overrides: Any
) -> list[Step]:
    needs_set(trace, messages)
    system_len = len(trace.system or (route.prompt.system_prompt if route.prompt else ""))
    needed, out = tokens_needed(trace, messages, system_len)
    chained = chain_steps(snap, route.chain_name) if route.chain_name else []
    steps: list[Step] = []
    if route.model_name:
        fixed = model_get(snap, route.model_name)
        explicit_model_check(fixed, needed, alone=not chained, trace=trace)
        steps.append(Step(model=fixed))
    else:
        optimize_for = overrides.get("optimize_for") or route.optimize_for
        try:
            ranked = await selection(
                snap,
                capabilities=sorted(route.capabilities | set(trace.needs)),
                optimize_for=optimize_for,
                needed=needed,
                out=out,
            )
        except (NoCandidate, ProviderKeyMissing, AllAttemptsFailed):
            if not chained:
                raise
            ranked = []
        ranked = refusal_filter(ranked, trace, fallback=bool(chained))
        steps.extend(Step(model=m) for m in ranked[: 1 if chained else SELECTION_FALLBACKS])
    steps.extend(chained)
    return roles_assign(context_filter(steps, needed))
