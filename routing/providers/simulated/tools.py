"""Tool calls: which offered tool fits the ask, with arguments from its schema, and what to say
once the tools have answered.

When tools are offered (`tool_choice` not "none") and the last turn is the user's, each tool is
scored by the words of its name (twice) and description shared with the user's text. A named
`tool_choice` calls that tool; "required" calls the best one even when nothing fits (a tool
named like an output, pydantic-ai's `final_result`, wins a tie); "auto" calls one only when it
fits (a word of its name, or two of its description), otherwise the model answers in text. An
ask for several things ("the weather in Paris and Tokyo", "the weather in Paris and the time in
Tokyo") gets one call per clause that gives a call a required value of its own, unless
`parallel_tool_calls` is false or the choice names a tool.

After tool results (the last messages are tool messages), the model answers in text quoting
what the tools returned; unless the choice still requires a call, when it calls a tool not yet
called since the user's message (an output tool, typically), filling its arguments from the
user's text and the values the tools returned. Ids are "call_" and a hash of the conversation,
the choice and the call: the same request gets the same ids.
"""

from __future__ import annotations

import json
import re
from typing import Any

from routing.messages import ChatOptions, last_user_text, message_text
from routing.providers.simulated.arguments import ArgumentFiller
from routing.providers.simulated.options import Profile
from routing.providers.simulated.task import Solver, Task, content_words, digest
from routing.providers.simulated.textvalues import clauses, name_words

Message = dict[str, Any]
GENERIC = {"get", "fetch", "retrieve", "call", "run", "tool", "function", "func", "api", "data"}
GENERIC |= {"info", "information", "current", "lookup", "look", "given", "return", "returns", "value"}
OUTPUT = re.compile(r"final|result|output|answer|respond|response|submit|structured|extract", re.IGNORECASE)
MAX_QUOTED = 400


def _stem(word: str) -> str:
    word = word.lower()
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _alike(a: str, b: str) -> bool:
    if a == b:
        return True
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    return common >= max(4, 0.75 * min(len(a), len(b)))


def _stems(words: list[str]) -> set[str]:
    return {_stem(w) for w in words if w not in GENERIC and len(w) > 2}


def tool_score(tool: dict[str, Any], text: str) -> tuple[int, int]:
    """(name words, description words) of `tool` that `text` mentions."""
    asked = _stems(content_words(text))
    function = tool["function"]
    named = _stems(name_words(function["name"]))
    described = _stems(content_words(function.get("description", ""))) - named
    return (
        sum(1 for w in named if any(_alike(w, a) for a in asked)),
        sum(1 for w in described if any(_alike(w, a) for a in asked)),
    )


def fits(tool: dict[str, Any], text: str) -> bool:
    named, described = tool_score(tool, text)
    return named >= 1 or described >= 2


def _rank(tool: dict[str, Any], text: str) -> float:
    named, described = tool_score(tool, text)
    score = 2 * named + described
    return score if score else 0.5 if OUTPUT.search(tool["function"]["name"]) else 0.0


def _best(tools: list[dict[str, Any]], text: str) -> dict[str, Any]:
    return max(tools, key=lambda tool: _rank(tool, text))  # max keeps the first of equals


def _trailing_results(messages: list[Message]) -> list[Message]:
    results: list[Message] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, message)
    return results


def _calls_made(messages: list[Message]) -> dict[str, dict[str, Any]]:
    """Every tool call in the conversation by id: {"name", "arguments" (parsed when JSON)}."""
    made: dict[str, dict[str, Any]] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            function = call.get("function", {})
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except ValueError:
                arguments = function.get("arguments")
            made[call.get("id", "")] = {"name": function.get("name", ""), "arguments": arguments}
    return made


def _since_user(messages: list[Message]) -> list[Message]:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "user":
            return messages[index + 1 :]
    return messages


def _result_value(message: Message) -> Any:
    text = message_text(message)
    try:
        return json.loads(text)
    except ValueError:
        return text


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        return {prefix: ", ".join(str(v) for v in value)} if prefix else {}
    return {prefix: value} if prefix else {}


def results_known(messages: list[Message]) -> dict[str, Any]:
    """Scalar values the tools returned since the user's message, by (last part of) their key;
    a tool that returned a bare value (`21.5`, "sunny") under the tool's own name."""
    known: dict[str, Any] = {}
    since = _since_user(messages)
    made = _calls_made(since)
    for message in [m for m in since if m.get("role") == "tool"]:
        value = _result_value(message)
        if isinstance(value, dict | list):
            for key, sub in _flatten(value).items():
                known.setdefault(key.rsplit(".", 1)[-1].lower(), sub)
        elif value is not None and str(value).strip():
            name = made.get(message.get("tool_call_id", ""), {}).get("name") or "result"
            known.setdefault(str(name).lower(), value)
    return known


def _brief(arguments: Any) -> str:
    if isinstance(arguments, dict):
        return ", ".join(f"{v}" for v in arguments.values() if not isinstance(v, dict | list))
    return "" if arguments is None else str(arguments)


def _said(value: Any) -> str:
    if isinstance(value, dict):
        flat = _flatten(value)
        return ", ".join(f"{k}: {v}" for k, v in list(flat.items())[:12]) or "nothing"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value[:12]) or "nothing"
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"


def results_answer(messages: list[Message]) -> str | None:
    """The text answer after tool results, quoting them; None when the last turn is not a tool's."""
    results = _trailing_results(messages)
    if not results:
        return None
    made = _calls_made(messages)
    lines = []
    for message in results:
        call = made.get(message.get("tool_call_id", ""), {"name": "a tool", "arguments": None})
        lines.append(f"{call['name']}({_brief(call['arguments'])}) returned {_said(_result_value(message))}")
    return f"From the tool results: {'; '.join(lines)}."


def call_id(*parts: object) -> str:
    return f"call_{digest('tool-call', *parts):016x}"


def _call(
    tool: dict[str, Any], arguments: Any, *, model: Profile, task: Task, index: int, choice: int
) -> dict[str, Any]:
    name = tool["function"]["name"]
    text = json.dumps(arguments, ensure_ascii=False)
    return {
        "id": call_id(model.model_id, task.seed, task.conversation, choice, index, name, text),
        "type": "function",
        "function": {"name": name, "arguments": text},
    }


def _parameters(tool: dict[str, Any]) -> dict[str, Any]:
    parameters = tool["function"].get("parameters")
    return parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}


def tool_calls_for(
    messages: list[Message], chat: ChatOptions, *, task: Task, model: Profile, solve: Solver, choice: int = 0
) -> list[dict[str, Any]]:
    """The calls the model makes now, in OpenAI's shape; [] when it answers in text."""
    tools = chat.tools or []
    if not chat.wants_tools or not tools:
        return []
    last = next((m for m in reversed(messages) if m.get("role") != "system"), None)
    if last is None or last.get("role") not in ("user", "tool"):
        return []
    named = chat.tool_choice.get("function", {}).get("name") if isinstance(chat.tool_choice, dict) else None
    required = named is not None or chat.tool_choice == "required"
    after_results = last.get("role") == "tool"
    if after_results and not required:
        return []
    user = last_user_text(messages) or ""
    known = results_known(messages) if after_results else {}
    said = (results_answer(messages) or "") if after_results else ""
    texts = [user, *(json.dumps(v, ensure_ascii=False) for v in known.values())]

    def fill(tool: dict[str, Any], primary: str) -> tuple[Any, int]:
        root = _parameters(tool)
        filler = ArgumentFiller(
            task,
            model,
            solve,
            texts=[primary, *(t for t in texts if t != primary)],
            root=root,
            known=known,
            said=said,
        )
        return filler.value(root), filler.found_required

    def call(tool: dict[str, Any], arguments: Any, index: int = 0) -> dict[str, Any]:
        return _call(tool, arguments, model=model, task=task, index=index, choice=choice)

    if named is not None:
        tool = next(t for t in tools if t["function"]["name"] == named)
        return [call(tool, fill(tool, user)[0])]
    if after_results:  # "required" after results: a tool not called since the user's message
        called = {c["name"] for c in _calls_made(_since_user(messages)).values()}
        fresh = [t for t in tools if t["function"]["name"] not in called] or tools
        tool = max(fresh, key=lambda t: (bool(OUTPUT.search(t["function"]["name"])), _rank(t, user)))
        return [call(tool, fill(tool, user)[0])]
    best = _best(tools, user)
    if not required and not fits(best, user):
        return []
    if chat.parallel_tool_calls is not False:
        several = _per_clause(tools, user, fill)
        if len(several) > 1:
            return [call(tool, arguments, index) for index, (tool, arguments) in enumerate(several)]
    return [call(best, fill(best, user)[0])]


def _per_clause(tools: list[dict[str, Any]], user: str, fill: Any) -> list[tuple[dict[str, Any], Any]]:
    """One (tool, arguments) per clause of the ask that fits a tool or continues the one before."""
    found: list[tuple[dict[str, Any], Any]] = []
    current: dict[str, Any] | None = None
    for clause in clauses(user):
        fitting = [t for t in tools if fits(t, clause)]
        tool = _best(fitting, clause) if fitting else current
        if tool is None:
            continue
        current = tool
        arguments, own = fill(tool, clause)
        if own and (tool, arguments) not in found:
            found.append((tool, arguments))
    return found
