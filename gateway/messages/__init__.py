"""POST /v1/messages and POST /v1/messages/count_tokens: Anthropic's Messages API as gateway
endpoints (adapters over the sequence in gateway/calls.py), for the `anthropic` SDKs and the
tools built on them.

The request (parse.py) becomes the chat request chat completions serves, so the engine call
is chat's own (`CHAT_COMPLETIONS.call`: a model, `route:` or `chain:`, plain or a stream read
up to its first output so a failure before it gets a real status); any provider kind answers
it. The answer (respond.py) and every error (errors.py) are in Anthropic's shape. The key
comes in `x-api-key` (or `Authorization: Bearer`); the `anthropic-version` and
`anthropic-beta` headers are accepted and not read.

count_tokens answers `{"input_tokens": N}` with the engine's estimate (the one it checks
context windows with: about 4 characters a token, plus the tool definitions' JSON text; images count nothing): the
key and its allow-list are checked, nothing is counted against its limits and nothing is
recorded.
"""

from __future__ import annotations

import json

from gateway.calls import Admitted, Endpoint, Spend
from gateway.chat import CHAT_COMPLETIONS, StreamHead
from gateway.errors import GatewayError
from gateway.http import GatewayRequest, GatewayResponse, json_response
from gateway.messages.errors import anthropic_error_response
from gateway.messages.parse import messages_request_parse
from gateway.messages.respond import message_response, stream_response
from gateway.validation import ChatRequest, json_parse
from routing.orchestrator import Result, estimate_prompt_tokens


class Messages(Endpoint[ChatRequest, Result | StreamHead]):
    endpoint = "messages"

    def parse(self, request: GatewayRequest) -> ChatRequest:
        return messages_request_parse(json_parse(request.body))

    def targets(self, parsed: ChatRequest) -> list[str]:
        return [parsed.model]

    async def call(self, parsed: ChatRequest, admitted: Admitted) -> Result | StreamHead:
        return await CHAT_COMPLETIONS.call(parsed, admitted)

    def spent(self, outcome: Result | StreamHead) -> Spend | None:
        return CHAT_COMPLETIONS.spent(outcome)

    def respond(self, outcome: Result | StreamHead, admitted: Admitted) -> GatewayResponse:
        if isinstance(outcome, StreamHead):
            first = outcome.head[0]
            model = first.model or outcome.model or (first.result.model if first.result else "")
            return stream_response(outcome.events, outcome.head, model, outcome.attempts, admitted)
        return message_response(outcome)

    def error(self, exc: GatewayError) -> GatewayResponse:
        return anthropic_error_response(exc)


class CountTokens(Endpoint[ChatRequest, int]):
    endpoint = "messages.count_tokens"
    admits = False  # nothing is spent: no rpm, tpm or budget counted

    def parse(self, request: GatewayRequest) -> ChatRequest:
        return messages_request_parse(json_parse(request.body), count_only=True)

    def targets(self, parsed: ChatRequest) -> list[str]:
        return [parsed.model]

    async def call(self, parsed: ChatRequest, admitted: Admitted) -> int:
        tokens = estimate_prompt_tokens(parsed.messages)
        if parsed.chat.tools:
            tokens += (len(json.dumps(parsed.chat.tools)) + 3) // 4
        return tokens

    def respond(self, outcome: int, admitted: Admitted) -> GatewayResponse:
        return json_response({"input_tokens": outcome})

    def error(self, exc: GatewayError) -> GatewayResponse:
        return anthropic_error_response(exc)


MESSAGES = Messages()
MESSAGES_COUNT_TOKENS = CountTokens()
