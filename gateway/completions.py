"""POST /v1/completions: OpenAI's legacy completions as a gateway endpoint, answered through chat
underneath: each prompt becomes one user message, parsed and sent exactly as a chat completion
would be (gateway/chat.py: the same targets, checks, engine calls and stream), then shaped as a
`text_completion`.

`model` is any model, `route:<task_type>` or `chain:<name>`; `prompt` a string or a list of
strings (one engine call each, at once, in one trace; their choices in prompt order). Token
arrays are refused: which tokenizer made them depends on the model that answers, and a chain or
route may pick any, so they cannot be decoded honestly. `max_tokens` defaults to 16 (as
OpenAI's); `temperature`, `top_p`, `stop`, `n`, `seed`, the penalties and `user` are chat's;
`logprobs` (0-5) asks chat for that many `top_logprobs` and maps the answer into the legacy
shape (a model that cannot is passed over, or the 400 names `logprobs`, as for chat); `echo`
puts the prompt before the text; `best_of` other than 1 or `n`, and `suffix`, are 400s naming
the field. Streamed: `text_completion` chunks, then (`stream_options.include_usage`) a usage
chunk, then `data: [DONE]`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from gateway.calls import Admitted, Endpoint, Spend
from gateway.chat import CHAT_COMPLETIONS, StreamHead, stream_close, stream_error
from gateway.errors import from_orchestrator_error, invalid
from gateway.http import GatewayRequest, GatewayResponse, cost_text
from gateway.validation import ChatRequest, chat_request_parse, json_parse
from routing.errors import InvalidRequest, OrchestratorError
from routing.messages import messages_parse
from routing.orchestrator import Result, StreamEvent
from routing.orchestrator import type_name as _type_name

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for this endpoint
MAX_PROMPTS = 32  # each prompt is an engine call of its own, all at once
MAX_LOGPROBS = 5  # OpenAI's limit for this endpoint
# Passed to chat as they are (chat validates them and names the field).
CHAT_FIELDS = (
    "model",
    "temperature",
    "top_p",
    "stop",
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "user",
    "stream",
    "stream_options",
)
FINISH_REASONS = ("stop", "length", "content_filter")

TOKEN_ARRAYS_REFUSED = (
    "prompt as token arrays is not supported: which tokenizer made them depends on the model that "
    "answers (a chain or route may pick any), so the gateway cannot decode them. Send the text."
)


@dataclass
class CompletionsRequest:
    chats: list[ChatRequest]  # one per prompt, in order (they differ only in their message)
    prompts: list[str]
    echo: bool = False
    logprobs: int | None = None

    @property
    def chat(self) -> ChatRequest:
        return self.chats[0]

    @property
    def model(self) -> str:
        return self.chat.model


def _chat_for(chat: ChatRequest, prompt: str, index: int) -> ChatRequest:
    try:
        messages = messages_parse([{"role": "user", "content": prompt}])
    except InvalidRequest as exc:
        raise invalid(exc.message, param=f"prompt[{index}]", code=exc.code) from None
    return replace(chat, messages=messages)


def _prompts(data: dict[str, Any]) -> list[str]:
    if "prompt" not in data or data["prompt"] is None:
        raise invalid("prompt is required: a string or a list of strings.", param="prompt")
    prompt = data["prompt"]
    if isinstance(prompt, str):
        return [prompt]
    if not isinstance(prompt, list):
        raise invalid(
            f"prompt must be a string or a list of strings, not {_type_name(prompt)}.",
            param="prompt",
            code="invalid_type",
        )
    if not prompt:
        raise invalid("prompt must not be an empty list.", param="prompt")
    if all(isinstance(p, int) and not isinstance(p, bool) for p in prompt) or any(
        isinstance(p, list) for p in prompt
    ):
        raise invalid(TOKEN_ARRAYS_REFUSED, param="prompt", code="unsupported_parameter")
    for i, p in enumerate(prompt):
        if not isinstance(p, str):
            raise invalid(
                f"prompt[{i}] must be a string, not {_type_name(p)}.",
                param=f"prompt[{i}]",
                code="invalid_type",
            )
    if len(prompt) > MAX_PROMPTS:
        raise invalid(
            f"prompt holds {len(prompt)} prompts; at most {MAX_PROMPTS} in one request.",
            param="prompt",
            code="out_of_range",
        )
    return list(prompt)


def _int_field(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{name} must be an integer, not {_type_name(value)}.", param=name, code="invalid_type")
    return value


def completions_request_parse(data: Any) -> CompletionsRequest:
    """The legacy body checked (400 naming the field) and turned into chat requests."""
    if not isinstance(data, dict):
        raise invalid(f"The request body must be a JSON object, not {_type_name(data)}.", code="invalid_type")
    if data.get("suffix") is not None:
        raise invalid(
            "suffix is not supported: completions are answered by chat models, which do not fill "
            "in text before a suffix.",
            param="suffix",
            code="unsupported_parameter",
        )
    echo = data.get("echo")
    if echo is not None and not isinstance(echo, bool):
        raise invalid(f"echo must be a boolean, not {_type_name(echo)}.", param="echo", code="invalid_type")
    logprobs = _int_field(data, "logprobs")
    if logprobs is not None and not 0 <= logprobs <= MAX_LOGPROBS:
        raise invalid(
            f"logprobs must be between 0 and {MAX_LOGPROBS}, got {logprobs}.",
            param="logprobs",
            code="invalid_value",
        )
    if logprobs is not None and echo:
        raise invalid(
            "logprobs with echo would need the prompt's log probabilities, which chat models do "
            "not return: ask for logprobs without echo.",
            param="logprobs",
            code="unsupported_parameter",
        )
    prompts = _prompts(data)
    body = {name: data[name] for name in CHAT_FIELDS if name in data}
    body["messages"] = [{"role": "user", "content": prompts[0]}]
    body["max_tokens"] = DEFAULT_MAX_TOKENS if data.get("max_tokens") is None else data["max_tokens"]
    if logprobs is not None:
        body["logprobs"] = True
        body["top_logprobs"] = logprobs
    chat = chat_request_parse(body)
    n = chat.chat.n
    best_of = _int_field(data, "best_of")
    if best_of is not None and best_of not in (1, n):
        raise invalid(
            f"best_of {best_of} is not supported: the gateway does not rank candidates; "
            f"leave it out or set it to n ({n}).",
            param="best_of",
            code="unsupported_parameter",
        )
    if chat.stream and len(prompts) > 1:
        raise invalid(
            "A list of prompts cannot be streamed by the gateway: send one prompt, or several without stream.",
            param="prompt",
            code="unsupported_parameter",
        )
    chats = [chat, *(_chat_for(chat, p, i) for i, p in enumerate(prompts[1:], 1))]
    return CompletionsRequest(chats=chats, prompts=prompts, echo=bool(echo), logprobs=logprobs)


# -- Answers in the legacy shape ---------------------------------------------------------


def logprobs_legacy(chat_logprobs: dict[str, Any] | None, *, offset: int = 0) -> dict[str, Any] | None:
    """Chat's `{"content": [{"token", "logprob", "top_logprobs": [...]}]}` as the legacy
    `{"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"}`."""
    if not chat_logprobs or chat_logprobs.get("content") is None:
        return None
    tokens: list[str] = []
    token_logprobs: list[float] = []
    top: list[dict[str, float]] = []
    text_offset: list[int] = []
    for item in chat_logprobs["content"]:
        token = str(item.get("token", ""))
        text_offset.append(offset)
        offset += len(token)
        tokens.append(token)
        token_logprobs.append(item.get("logprob"))
        top.append({str(t.get("token", "")): t.get("logprob") for t in item.get("top_logprobs") or []})
    return {
        "tokens": tokens,
        "token_logprobs": token_logprobs,
        "top_logprobs": top,
        "text_offset": text_offset,
    }


def _finish(reason: str | None) -> str:
    return reason if reason in FINISH_REASONS else "stop"


def _choices(result: Result, prompt: str, echo: bool, first_index: int) -> list[dict[str, Any]]:
    answers = [(result.text, result.finish_reason, result.logprobs)]
    answers += [(m.get("text") or "", m.get("finish_reason"), m.get("logprobs")) for m in result.more_choices]
    head = prompt if echo else ""
    return [
        {
            "text": head + text,
            "index": first_index + i,
            "logprobs": logprobs_legacy(logprobs),
            "finish_reason": _finish(reason),
        }
        for i, (text, reason, logprobs) in enumerate(answers)
    ]


def _usage(results: list[Result]) -> dict[str, int]:
    prompt = sum(r.usage.input_tokens for r in results)
    completion = sum(r.usage.output_tokens for r in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


@dataclass
class Completed:
    """Every prompt's Result, in prompt order."""

    req: CompletionsRequest
    results: list[Result]

    @property
    def cost_usd(self) -> Decimal | None:
        total = Decimal(0)
        for result in self.results:
            if result.cost_usd is None:
                return None
            total += result.cost_usd
        return total


def completion_dict(done: Completed, trace_id: str, created: int) -> dict[str, Any]:
    choices: list[dict[str, Any]] = []
    for prompt, result in zip(done.req.prompts, done.results, strict=True):
        choices += _choices(result, prompt, done.req.echo, len(choices))
    return {
        "id": f"cmpl-{trace_id}",
        "object": "text_completion",
        "created": created,
        "model": done.results[0].model,
        "choices": choices,
        "usage": _usage(done.results),
        "system_fingerprint": None,
    }


# -- The endpoint ------------------------------------------------------------------------


@dataclass
class StreamOpened:
    req: CompletionsRequest
    head: StreamHead


class Completions(Endpoint[CompletionsRequest, Completed | StreamOpened]):
    endpoint = "completions"

    def parse(self, request: GatewayRequest) -> CompletionsRequest:
        return completions_request_parse(json_parse(request.body))

    def targets(self, parsed: CompletionsRequest) -> list[str]:
        return [parsed.model]

    async def call(self, parsed: CompletionsRequest, admitted: Admitted) -> Completed | StreamOpened:
        if parsed.chat.stream:
            opened = await CHAT_COMPLETIONS.call(parsed.chat, admitted)
            assert isinstance(opened, StreamHead)
            return StreamOpened(parsed, opened)
        # Every prompt runs to its end; when one failed, the request fails with its error, and
        # what the others spent still counts against the key (their records carry it too).
        outcomes = await asyncio.gather(
            *(CHAT_COMPLETIONS.call(req, admitted) for req in parsed.chats), return_exceptions=True
        )
        results = [r for r in outcomes if isinstance(r, Result)]
        failed = next((r for r in outcomes if isinstance(r, BaseException)), None)
        if failed is not None:
            await admitted.settle(Spend.of(results))
            raise failed
        return Completed(parsed, results)

    def spent(self, outcome: Completed | StreamOpened) -> Spend | None:
        # A stream settles its spend itself when its result arrives.
        return Spend.of(outcome.results) if isinstance(outcome, Completed) else None

    def respond(self, outcome: Completed | StreamOpened, admitted: Admitted) -> GatewayResponse:
        if isinstance(outcome, StreamOpened):
            return _stream_response(outcome, admitted)
        payload = json.dumps(completion_dict(outcome, admitted.trace_id, int(time.time())))
        headers = {
            "x-orchestrator-trace-id": admitted.trace_id,
            "x-orchestrator-attempts": str(sum(max(1, len(r.attempts)) for r in outcome.results)),
            "x-orchestrator-cost-usd": cost_text(outcome.cost_usd),
            "x-orchestrator-model": outcome.results[0].model,
        }
        return GatewayResponse(200, headers, payload.encode())


COMPLETIONS = Completions()


def _sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _stream_response(opened: StreamOpened, admitted: Admitted) -> GatewayResponse:
    req, stream, trace_id = opened.req, opened.head, admitted.trace_id
    created = int(time.time())
    first = stream.head[0]
    model = first.model or stream.model or (first.result.model if first.result else "")
    headers = {
        "x-orchestrator-trace-id": trace_id,
        "x-orchestrator-attempts": str(max(1, stream.attempts)),
        "x-orchestrator-model": model,
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
    }

    def chunk(text: str, finish_reason: str | None = None) -> bytes:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}
        return _sse(
            {
                "id": f"cmpl-{trace_id}",
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [choice],
            }
        )

    async def body() -> AsyncIterator[bytes]:
        nonlocal model
        events = stream.events
        out: list[bytes] = [chunk(req.prompts[0])] if req.echo else []
        pending: list[StreamEvent] = list(stream.head)
        try:
            while True:
                if pending:
                    event = pending.pop(0)
                else:
                    if out:
                        yield b"".join(out)
                        out.clear()
                    try:
                        event = await events.__anext__()
                    except StopAsyncIteration:
                        break
                    except OrchestratorError as exc:
                        yield _sse(from_orchestrator_error(exc).to_dict())
                        return
                if event.kind == "delta" and event.text:
                    out.append(chunk(event.text))
                elif event.kind == "attempt" and event.model:
                    model = event.model
                elif event.kind == "error":
                    async for _ in events:  # the engine's normal end (records written)
                        pass
                    out.append(_sse(stream_error(event, trace_id).to_dict()))
                    yield b"".join(out)
                    return
                elif event.kind == "done" and event.result is not None:
                    result = event.result
                    model = result.model or model
                    await admitted.settle(Spend.of([result]))
                    async for _ in events:  # the engine ends normally (its records written)
                        pass
                    out.append(chunk("", _finish(result.finish_reason)))
                    if req.chat.include_usage:
                        out.append(
                            _sse(
                                {
                                    "id": f"cmpl-{trace_id}",
                                    "object": "text_completion",
                                    "created": created,
                                    "model": model,
                                    "choices": [],
                                    "usage": _usage([result]),
                                    "orchestrator": {
                                        "trace_id": result.trace_id,
                                        "attempts": max(1, len(result.attempts)),
                                        "cost_usd": cost_text(result.cost_usd),
                                    },
                                }
                            )
                        )
                    out.append(b"data: [DONE]\n\n")
                    yield b"".join(out)
                    return
            if out:
                yield b"".join(out)
        finally:
            # A client that goes away cancels the upstream call; the attempt is recorded cancelled.
            await stream_close(events)
            await admitted.release()  # a stream cut short gives its reservation back

    return GatewayResponse(200, headers, stream=body(), content_type="text/event-stream")
