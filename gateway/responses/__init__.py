"""The OpenAI Responses API on the gateway: `POST /v1/responses` and `GET` / `DELETE
/v1/responses/{id}`.

- parse.py: the request body → the chat engine's inputs (canonical messages, ChatOptions,
  SamplingOptions), 400s naming the Responses API's own fields;
- shape.py: the engine's Result → the response object and its output items;
- stream.py: the engine's stream → the typed server-sent events;
- store.py / selectors.py: stored responses (writes / reads), for `previous_response_id`;
- endpoint.py: the adapters over the gateway's sequence (gateway/calls.py).
"""

from gateway.responses.endpoint import RESPONSE_ITEM, RESPONSES

__all__ = ["RESPONSES", "RESPONSE_ITEM"]
