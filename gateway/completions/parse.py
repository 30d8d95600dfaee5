"""The legacy completions request: prompts, fields, and the chat requests made from them."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from gateway.errors import invalid
from gateway.validation import ChatRequest, chat_request_parse
from routing.errors import InvalidRequest
from routing.messages import messages_parse
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
