"""Canonical (OpenAI-shaped) messages, tools and options ↔ Gemini's generateContent API.

- system messages → `systemInstruction` (joined in order);
- user content → `text` and image parts: a data URI → `inlineData` (base64 as it is), an
  http(s) URL → `fileData` (Gemini fetches it), with the MIME type when the URL's name says it;
  any other part type is refused naming it;
- assistant turns → role `model`; tool calls → `functionCall` parts (arguments parsed from
  their JSON text; the first call of a turn carries the signature Google documents for
  calls Gemini did not make itself, which Gemini 3 models ask for);
- tool messages → `functionResponse` parts in one user turn, named by the call they answer
  (looked up by id in the history); the response must be an object, so a result that is
  not a JSON object is wrapped as `{"result": …}`;
- tools → one `functionDeclarations` list, their JSON Schema parameters reduced to the
  subset Gemini's Schema takes (`$ref`s inlined, no `additionalProperties`, `$schema`,
  `strict`…; see `schema_to_gemini` in `tools.py`); tool_choice auto / required / a named function / none
  → functionCallingConfig AUTO / ANY / ANY with allowedFunctionNames / NONE;
- back: text parts (thoughts left out) and `functionCall` parts → text and OpenAI tool calls,
  each with an id made from the response id (Gemini gives none), finish reasons as OpenAI
  names them, `candidates` → choices, `logprobsResult` → OpenAI's logprobs, and usage with
  `thoughtsTokenCount` as reasoning tokens (counted in the output, as OpenAI counts them) and
  `cachedContentTokenCount` as cached tokens.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
from typing import Any

from routing.errors import InvalidRequest, ModelPermanentError, TransientError
from routing.messages import ChatOptions
from routing.providers.base import Choice, Completion, Usage
from routing.providers.gemini.tools import schema_to_gemini
from routing.sampling import SamplingOptions

_DATA_URI = re.compile(r"^data:(?P<type>[^;,]+);base64,(?P<data>.*)$", re.DOTALL)
# What Google documents for a function call whose thought signature is unknown (a call made
# by another model, or one whose signature was not kept).
THOUGHT_SIGNATURE_SKIP = "skip_thought_signature_validator"

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "stop",
    "OTHER": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}
# The model tried to call a tool and the call could not be read (or was not offered).
MALFORMED_CALLS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})

# reasoning_effort → thinkingConfig.thinkingBudget (low/medium/high as Google's own OpenAI
# endpoint maps them; minimal: the smallest budget every thinking model accepts).
REASONING_BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


# -- Requests ----------------------------------------------------------------------------------


def _image_part(part: dict[str, Any]) -> dict[str, Any]:
    url = part["image_url"]["url"]
    match = _DATA_URI.match(url)
    if match is not None:
        return {"inlineData": {"mimeType": match["type"], "data": match["data"]}}
    # Gemini fetches a public (or signed) URL itself; the MIME type is optional, sent when
    # the URL's name tells it.
    media_type, _ = mimetypes.guess_type(url.split("?", 1)[0].split("#", 1)[0])
    if media_type and media_type.startswith("image/"):
        return {"fileData": {"mimeType": media_type, "fileUri": url}}
    return {"fileData": {"fileUri": url}}


def _parts(content: Any, param: str) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"text": content}]
    parts = []
    for j, part in enumerate(content):
        if part.get("type") == "image_url":
            parts.append(_image_part(part))
        elif part.get("type") == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        else:
            raise InvalidRequest(
                f"{param}[{j}].type {part.get('type')!r} cannot be sent to Gemini models.",
                param=f"{param}[{j}].type",
                code="unsupported_content",
            )
    return parts


def _arguments(arguments: str, param: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError:
        raise InvalidRequest(f"{param} is not valid JSON.", param=param, code="invalid_value") from None
    if not isinstance(value, dict):
        raise InvalidRequest(f"{param} must be a JSON object.", param=param, code="invalid_value")
    return value


def _response(content: Any) -> dict[str, Any]:
    text = content if isinstance(content, str) else ""
    try:
        value = json.loads(text)
    except ValueError:
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}


def messages_to_gemini(messages: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(systemInstruction or None, contents) for canonical messages."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id → function name

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for index, message in enumerate(messages):
        role = message["role"]
        content = message.get("content")
        param = f"messages[{index}]"
        if role == "system":
            if isinstance(content, str) and content:
                system.append(content)
        elif role == "user":
            add("user", _parts(content, f"{param}.content"))
        elif role == "assistant":
            parts = _parts(content, f"{param}.content")
            for k, call in enumerate(message.get("tool_calls") or ()):
                name = call["function"]["name"]
                names[call["id"]] = name
                arguments = _arguments(
                    call["function"]["arguments"], f"{param}.tool_calls[{k}].function.arguments"
                )
                piece: dict[str, Any] = {"functionCall": {"name": name, "args": arguments}}
                if k == 0:
                    piece["thoughtSignature"] = THOUGHT_SIGNATURE_SKIP
                parts.append(piece)
            add("model", parts)
        elif role == "tool":
            call_id = message["tool_call_id"]
            name = names.get(call_id) or message.get("name")
            if not name:
                raise InvalidRequest(
                    f"{param}.tool_call_id {call_id!r} answers no tool call of an earlier assistant message.",
                    param=f"{param}.tool_call_id",
                    code="invalid_value",
                )
            add("user", [{"functionResponse": {"name": name, "response": _response(content)}}])
    instruction = {"parts": [{"text": "\n\n".join(system)}]} if system else None
    return instruction, contents


def generation_config(
    *,
    temperature: float | None,
    max_tokens: int | None,
    sampling: SamplingOptions,
    chat: ChatOptions,
) -> dict[str, Any]:
    """`generationConfig` for what the request set (empty when nothing was)."""
    config: dict[str, Any] = {}
    if temperature is not None:
        config["temperature"] = temperature
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    if sampling.top_p is not None:
        config["topP"] = sampling.top_p
    if sampling.stop:
        config["stopSequences"] = list(sampling.stop)
    if sampling.seed is not None:
        config["seed"] = sampling.seed
    if sampling.format_type in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = sampling.json_schema
        if schema is not None:
            config["responseSchema"] = schema_to_gemini(schema)
    if chat.n > 1:
        config["candidateCount"] = chat.n
    if chat.logprobs:
        config["responseLogprobs"] = True
        if chat.top_logprobs:
            config["logprobs"] = chat.top_logprobs
    if chat.reasoning_effort is not None:
        config["thinkingConfig"] = {"thinkingBudget": REASONING_BUDGETS[chat.reasoning_effort]}
    return config


# -- Answers -----------------------------------------------------------------------------------


def call_id(response_id: str, candidate: int, index: int) -> str:
    """An id for a call Gemini gave none: from the response's id (unique per answer), so the
    calls of every turn have ids of their own, the same on a re-read."""
    digest = hashlib.sha256(f"{response_id}:{candidate}:{index}".encode()).hexdigest()[:24]
    return f"call_{digest}"


def response_id_of(data: dict[str, Any]) -> str:
    value = data.get("responseId")
    return value if isinstance(value, str) and value else os.urandom(12).hex()


def tool_call_from_part(call: Any, *, response_id: str, candidate: int, index: int) -> dict[str, Any]:
    """A `functionCall` part's value → an OpenAI tool call; a malformed one is transient."""
    name = call.get("name") if isinstance(call, dict) else None
    args = call.get("args", {}) if isinstance(call, dict) else None
    if args is None:
        args = {}
    if not isinstance(name, str) or not name or not isinstance(args, dict):
        raise TransientError(
            "The model sent a malformed function call (no name, or arguments not an object)."
        )
    ident = call.get("id")
    return {
        "id": ident if isinstance(ident, str) and ident else call_id(response_id, candidate, index),
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)},
    }


def finish_reason_from_gemini(reason: Any, *, has_calls: bool) -> str | None:
    """OpenAI's finish reason for a candidate's; a malformed call is a TransientError."""
    if not isinstance(reason, str):
        return None
    if reason in MALFORMED_CALLS:
        raise TransientError(f"The model's function call could not be used (finishReason: {reason}).")
    finish = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if has_calls and finish == "stop" else finish


def blocked_error(data: dict[str, Any]) -> ModelPermanentError | None:
    feedback = data.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if reason:
        return ModelPermanentError(f"Blocked by the provider's content filter (blockReason: {reason}).")
    return None


def logprobs_from_gemini(result: Any, top: int | None) -> dict[str, Any] | None:
    """`logprobsResult` → OpenAI's choice.logprobs (`top` alternatives per token)."""
    if not isinstance(result, dict):
        return None
    chosen = result.get("chosenCandidates")
    if not isinstance(chosen, list):
        return None
    found = result.get("topCandidates")
    tops: list[Any] = found if isinstance(found, list) else []

    def entry(candidate: dict[str, Any]) -> dict[str, Any]:
        token = str(candidate.get("token", ""))
        logprob = candidate.get("logProbability")
        return {
            "token": token,
            "logprob": logprob if isinstance(logprob, int | float) else 0.0,
            "bytes": list(token.encode()),
        }

    content = []
    for i, candidate in enumerate(chosen):
        if not isinstance(candidate, dict):
            continue
        item = entry(candidate)
        alternatives: list[dict[str, Any]] = []
        if top and i < len(tops) and isinstance(tops[i], dict):
            alternatives = [entry(c) for c in tops[i].get("candidates") or () if isinstance(c, dict)][:top]
        content.append({**item, "top_logprobs": alternatives})
    return {"content": content, "refusal": None}


def usage_from_gemini(usage: Any) -> Usage:
    """`usageMetadata` → ours: input = prompt (cached included) + tool-use prompt tokens;
    output = candidates + thoughts (OpenAI counts reasoning in completion tokens, and Google
    bills thoughts as output)."""
    if not isinstance(usage, dict):
        return Usage()

    def count(name: str) -> int:
        value = usage.get(name)
        return value if isinstance(value, int) and value > 0 else 0

    thoughts = count("thoughtsTokenCount")
    return Usage(
        input_tokens=count("promptTokenCount") + count("toolUsePromptTokenCount"),
        output_tokens=count("candidatesTokenCount") + thoughts,
        cached_tokens=count("cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def _candidate(
    candidate: Any, *, response_id: str, position: int, single_call: bool, top: int | None
) -> Choice:
    if not isinstance(candidate, dict):
        raise TransientError("The provider sent a candidate we could not read.")
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict) or part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif "functionCall" in part:
            calls.append(
                tool_call_from_part(
                    part["functionCall"], response_id=response_id, candidate=position, index=len(calls)
                )
            )
    if single_call:
        calls = calls[:1]
    finish = finish_reason_from_gemini(candidate.get("finishReason"), has_calls=bool(calls))
    return Choice(
        text="".join(texts),
        finish_reason=finish,
        tool_calls=calls,
        logprobs=logprobs_from_gemini(candidate.get("logprobsResult"), top) if top is not None else None,
    )


def completion_from_gemini_json(content: bytes, *, chat: ChatOptions) -> Completion:
    """A generateContent body (JSON bytes) → Completion (candidates 1… as more_choices).

    Unreadable, or no candidates: transient; a blocked prompt or a filtered first candidate:
    model-permanent."""
    try:
        data = json.loads(content)
        candidates = data.get("candidates")
    except (ValueError, AttributeError):
        preview = content[:200].decode("utf-8", "replace")
        raise TransientError(f"The provider sent an answer we could not read: {preview!r}") from None
    if not candidates or not isinstance(candidates, list):
        raise blocked_error(data) or TransientError("The provider answered with no candidates.")
    response_id = response_id_of(data)
    top = (chat.top_logprobs or 0) if chat.logprobs else None
    single = chat.parallel_tool_calls is False
    choices = [
        _candidate(c, response_id=response_id, position=i, single_call=single, top=top)
        for i, c in enumerate(candidates)
    ]
    first = choices[0]
    if first.finish_reason == "content_filter":
        raise ModelPermanentError("Blocked by the provider's content filter (the answer was stopped).")
    return Completion(
        text=first.text,
        finish_reason=first.finish_reason,
        usage=usage_from_gemini(data.get("usageMetadata")),
        tool_calls=first.tool_calls,
        logprobs=first.logprobs,
        more_choices=choices[1:],
    )
