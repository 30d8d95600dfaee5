"""The adapters over the gateway's sequence (gateway/calls.py): `POST /v1/responses` (an engine
call through the chat endpoint's own call, so targets, checks, fallbacks, limits and records
are chat's, recorded with endpoint "responses") and `GET` / `DELETE /v1/responses/{id}` (a
stored response of the caller's key: no engine call, nothing counted).

A stored response is kept when `store` is true (the default), with the conversation up to it;
`previous_response_id` puts that conversation before this request's input (a response that
does not exist, expired or belongs to another key is a 400 naming previous_response_id, as
OpenAI answers). Storing never fails a call that was answered: a failed write is logged.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from asgiref.sync import sync_to_async

from gateway.calls import Admitted, Endpoint, Spend
from gateway.chat import CHAT_COMPLETIONS, StreamHead, result_headers
from gateway.errors import GatewayError, invalid
from gateway.http import GatewayRequest, GatewayResponse, json_response
from gateway.models import StoredResponse
from gateway.responses.parse import ResponsesRequest, responses_request_parse
from gateway.responses.selectors import stored_response_get
from gateway.responses.shape import (
    assistant_turn,
    item_id,
    output_items,
    response_object,
    status_of,
)
from gateway.responses.store import stored_response_delete, stored_response_save, stored_responses_purge
from gateway.responses.stream import stream_response
from gateway.validation import json_parse
from routing.messages import ParsedMessages
from routing.orchestrator import Result

log = logging.getLogger("gateway")


def _stored_read(*, response_id: str, api_key_id: int) -> StoredResponse | None:
    """A key's live stored response; an expired one by that id is purged on the way."""
    row = stored_response_get(response_id=response_id, api_key_id=api_key_id)
    if row is None:
        stored_responses_purge(response_id=response_id)
    return row


_aread = sync_to_async(_stored_read)
_asave = sync_to_async(stored_response_save)
_adelete = sync_to_async(stored_response_delete)


@dataclass
class Call:
    """A request on its way: the parsed request with the conversation it continues."""

    req: ResponsesRequest
    response_id: str
    conversation: ParsedMessages  # the previous response's conversation and this input


@dataclass
class Answered:
    result: Result
    response: dict[str, Any]


@dataclass
class Streaming:
    opened: StreamHead
    call: Call


async def _continued(req: ResponsesRequest, info_id: int) -> ParsedMessages:
    """The conversation this request continues, then its input (checked against it)."""
    if req.previous_response_id is None:
        return req.input_messages
    row = await _aread(response_id=req.previous_response_id, api_key_id=info_id)
    if row is None:
        raise invalid(
            f"Previous response with id {req.previous_response_id!r} not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    previous = list(row.conversation)
    made = {c["id"] for m in previous for c in m.get("tool_calls") or []}
    for call_id, index in req.answers_previous.items():
        if call_id not in made:
            raise invalid(
                f"input[{index}].call_id {call_id!r} answers no function_call of the conversation so far.",
                param=f"input[{index}].call_id",
                code="invalid_value",
            )
    return ParsedMessages(previous + req.input_messages)


class Responses(Endpoint[ResponsesRequest, Answered | Streaming]):
    endpoint = "responses"

    def parse(self, request: GatewayRequest) -> ResponsesRequest:
        return responses_request_parse(json_parse(request.body))

    def targets(self, parsed: ResponsesRequest) -> list[str]:
        return [parsed.chat.model]

    async def call(self, parsed: ResponsesRequest, admitted: Admitted) -> Answered | Streaming:
        conversation = await _continued(parsed, admitted.info.id)
        system = [{"role": "system", "content": parsed.instructions}] if parsed.instructions else []
        chat = replace(parsed.chat, messages=ParsedMessages(system + conversation))
        call = Call(parsed, item_id("resp"), conversation)
        outcome = await CHAT_COMPLETIONS.call(chat, admitted)
        if isinstance(outcome, StreamHead):
            return Streaming(outcome, call)
        output = output_items(outcome)
        status, incomplete = status_of(outcome)
        response = response_object(
            response_id=call.response_id,
            created_at=int(time.time()),
            model=outcome.model,
            echo=parsed.echo,
            previous_response_id=parsed.previous_response_id,
            store=parsed.store,
            status=status,
            output=output,
            result=outcome,
            incomplete_details=incomplete,
        )
        await _store(call, admitted, response, [assistant_turn(output)])
        return Answered(outcome, response)

    def spent(self, outcome: Answered | Streaming) -> Spend | None:
        return Spend.of([outcome.result]) if isinstance(outcome, Answered) else None

    def respond(self, outcome: Answered | Streaming, admitted: Admitted) -> GatewayResponse:
        if isinstance(outcome, Streaming):
            call = outcome.call

            async def finish(response: dict[str, Any], turn: list[dict[str, Any]]) -> None:
                await _store(call, admitted, response, turn)

            return stream_response(
                outcome.opened,
                admitted,
                response_id=call.response_id,
                echo=call.req.echo,
                previous_response_id=call.req.previous_response_id,
                store=call.req.store,
                finish=finish,
            )
        payload = json.dumps(outcome.response).encode()
        return GatewayResponse(200, result_headers(outcome.result), payload)


async def _store(
    call: Call, admitted: Admitted, response: dict[str, Any], turn: list[dict[str, Any]]
) -> None:
    if not call.req.store:
        return
    try:
        await _asave(
            response_id=call.response_id,
            api_key_id=admitted.info.id,
            response=response,
            conversation=[*call.conversation, *turn],
        )
    except Exception:
        log.exception("gateway: could not store response %s (trace %s)", call.response_id, admitted.trace_id)


RESPONSES = Responses()


# -- GET / DELETE /v1/responses/{id} -------------------------------------------------------


@dataclass(frozen=True)
class ItemRequest:
    method: str
    response_id: str


def _not_found(response_id: str) -> GatewayError:
    return GatewayError(
        404, f"Response with id {response_id!r} not found.", code="not_found", param="response_id"
    )


class ResponseItem(Endpoint[ItemRequest, dict[str, Any]]):
    """A stored response of the caller's key: read or delete it (404 otherwise)."""

    admits = False

    def parse(self, request: GatewayRequest) -> ItemRequest:
        response_id = request.params.get("response_id", "")
        if "/" in response_id:
            raise GatewayError(
                404,
                f"Invalid URL ({request.method} {request.path}): the gateway serves GET and DELETE "
                "/v1/responses/{id} (a stored response's input items are not listed).",
                code="unknown_url",
            )
        if not response_id or len(response_id) > 64:
            raise _not_found(response_id)
        return ItemRequest(request.method, response_id)

    async def call(self, parsed: ItemRequest, admitted: Admitted) -> dict[str, Any]:
        key_id = admitted.info.id
        if parsed.method == "DELETE":
            if not await _adelete(response_id=parsed.response_id, api_key_id=key_id):
                raise _not_found(parsed.response_id)
            return {"id": parsed.response_id, "object": "response", "deleted": True}
        row = await _aread(response_id=parsed.response_id, api_key_id=key_id)
        if row is None:
            raise _not_found(parsed.response_id)
        return dict(row.response)

    def respond(self, outcome: dict[str, Any], admitted: Admitted) -> GatewayResponse:
        return json_response(outcome)


RESPONSE_ITEM = ResponseItem()
