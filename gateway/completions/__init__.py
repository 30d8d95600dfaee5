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

from gateway.calls import Admitted, Endpoint, Spend
from gateway.chat import CHAT_COMPLETIONS, StreamHead
from gateway.completions.parse import CompletionsRequest, completions_request_parse
from gateway.completions.shape import Completed, completion_dict
from gateway.completions.stream import StreamOpened, stream_response
from gateway.http import GatewayRequest, GatewayResponse, cost_text
from gateway.validation import json_parse
from routing.orchestrator import Result

# -- The endpoint ------------------------------------------------------------------------


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
            return stream_response(outcome, admitted)
        payload = json.dumps(completion_dict(outcome, admitted.trace_id, int(time.time())))
        headers = {
            "x-orchestrator-trace-id": admitted.trace_id,
            "x-orchestrator-attempts": str(sum(max(1, len(r.attempts)) for r in outcome.results)),
            "x-orchestrator-cost-usd": cost_text(outcome.cost_usd),
            "x-orchestrator-model": outcome.results[0].model,
        }
        return GatewayResponse(200, headers, payload.encode())


COMPLETIONS = Completions()
