"""A legacy `text_completion` from chat results: choices (echo, legacy logprobs), finish reasons, usage."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.completions.parse import CompletionsRequest
from routing.orchestrator import Result

FINISH_REASONS = ("stop", "length", "content_filter")


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


def finish_legacy(reason: str | None) -> str:
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
            "finish_reason": finish_legacy(reason),
        }
        for i, (text, reason, logprobs) in enumerate(answers)
    ]


def usage_legacy(results: list[Result]) -> dict[str, int]:
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
        "usage": usage_legacy(done.results),
        "system_fingerprint": None,
    }
