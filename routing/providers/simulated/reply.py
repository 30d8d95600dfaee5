"""One reply of a simulated model to a request: tool calls, or text shaped by the sampling options.

In order: the tool calls the model makes (`tools.tool_calls_for`); else, after tool results,
an answer quoting them (`tools.results_answer`); else the skills' answer
(`answer.simulated_answer`), preceded by what the model can tell of the user's images
(`images.images_note`). Then the sampling options the API promises: bare JSON under a
`response_format`, `stop` sequences, and `max_tokens` (finish reason "length").

Choice `i` of `n` draws with the seed shifted by `i`: the same request gets the same choices,
and the choices may word things differently from each other.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from routing.providers.base import ProviderRequest
from routing.providers.simulated.answer import simulated_answer
from routing.providers.simulated.images import images_note
from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import task_from_messages
from routing.providers.simulated.tools import results_answer, tool_calls_for

TOKEN = re.compile(r"\s*\S+")  # a word with the whitespace before it: one token
CHOICE_SEED_STEP = 7919


@dataclass
class Reply:
    text: str
    finish_reason: str = "stop"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    output_tokens: int = 0


def simulated_reply(request: ProviderRequest, profile: Profile, *, choice: int = 0) -> Reply:
    sampling = request.sampling
    seed = sampling.seed
    if choice:
        seed = (seed or 0) + choice * CHOICE_SEED_STEP
    task = task_from_messages(
        request.messages, seed=seed, format_type=sampling.format_type, json_schema=sampling.json_schema
    )
    calls = tool_calls_for(
        request.messages, request.chat, task=task, model=profile, solve=simulated_answer, choice=choice
    )
    if calls:
        tokens = sum(3 + len(TOKEN.findall(c["function"]["arguments"])) for c in calls)
        return Reply(text="", finish_reason="tool_calls", tool_calls=calls, output_tokens=tokens)
    text = results_answer(request.messages) if sampling.format_type == "text" else None
    if text is None:
        text = simulated_answer(task, profile).text
        last: dict[str, Any] = next((m for m in reversed(request.messages) if m.get("role") != "system"), {})
        note = images_note(request.messages) if last.get("role") == "user" else ""
        if note and sampling.format_type == "text":
            text = f"{note}\n\n{text}" if task.user.strip() else note
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
    return Reply(text=text, finish_reason=finish, output_tokens=len(words))


def input_tokens(request: ProviderRequest) -> int:
    """The prompt's words, 3 a message, and the tools' definitions."""
    words = sum(len(_content(m.get("content")).split()) for m in request.messages)
    for message in request.messages:
        for call in message.get("tool_calls") or ():
            words += 3 + len(str(call.get("function", {}).get("arguments", "")).split())
    if request.chat.tools:
        words += len(json.dumps(request.chat.tools).split())
    return words + 3 * len(request.messages)


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
