"""`GeminiClient`: generateContent and streamGenerateContent (SSE) over HTTP.

The same HTTP layer as the SDK clients (`routing.providers.openai_style.sdk_client_kwargs`:
aiohttp when installed, the shared TLS context, the pool limit); the key goes in the
`x-goog-api-key` header, never in the URL. A status error is raised as `GeminiAPIError`,
shaped like the SDKs' status errors (`status_code`, `response`, `body`), so the transport
chokepoint maps it the same way (429/5xx transient, 401/403/404 model-permanent, 400
request-invalid); a key Google rejects (400 API_KEY_INVALID) counts as 401.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncGenerator
from typing import Any

import httpx2

from routing.errors import ModelPermanentError, RequestInvalidError, TransientError
from routing.providers.base import (
    Completion,
    EmbeddingRequest,
    Embeddings,
    ProviderRequest,
    StreamEnd,
    ToolCallDelta,
    Usage,
)
from routing.providers.batching import batches_embed
from routing.providers.gemini.embed import GEMINI_EMBED_BATCH_MAX, embed_body, embeddings_from_gemini_json
from routing.providers.gemini.tools import tool_config_to_gemini, tools_of_history, tools_to_gemini
from routing.providers.gemini.wire import (
    blocked_error,
    completion_from_gemini_json,
    finish_reason_from_gemini,
    generation_config,
    messages_to_gemini,
    response_id_of,
    tool_call_from_part,
    usage_from_gemini,
)
from routing.providers.openai_style import SSEDecoder


class GeminiAPIError(Exception):
    """An HTTP status error from the Gemini API (read by the transport like the SDKs' own)."""

    def __init__(self, status_code: int, response: httpx2.Response, body: Any) -> None:
        inner = body.get("error") if isinstance(body, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else None
        self.message = message if isinstance(message, str) and message else f"HTTP {status_code}"
        super().__init__(self.message)
        self.status_code = (
            401 if status_code == 400 and "API_KEY_INVALID" in json.dumps(body) else status_code
        )
        self.response = response
        self.body = body


def request_body(request: ProviderRequest) -> dict[str, Any]:
    """The generateContent body for `request`."""
    system, contents = messages_to_gemini(request.messages)
    if not contents:
        raise RequestInvalidError("Gemini models need at least one user message.", local=True)
    body: dict[str, Any] = {"contents": contents}
    if system is not None:
        body["systemInstruction"] = system
    chat = request.chat
    if chat.tools:
        body["tools"] = tools_to_gemini(chat.tools)
        config = tool_config_to_gemini(chat.tool_choice)
        if config is not None:
            body["toolConfig"] = config
    elif any(message.get("tool_calls") for message in request.messages):
        # Tool turns with no tools offered (a final "now answer" turn): declare the functions
        # the history called, and let none be called.
        body["tools"] = tools_of_history(request.messages)
        body["toolConfig"] = {"functionCallingConfig": {"mode": "NONE"}}
    generation = generation_config(
        temperature=request.temperature, max_tokens=request.max_tokens, sampling=request.sampling, chat=chat
    )
    if generation:
        body["generationConfig"] = generation
    return body


class GeminiClient:
    def __init__(
        self,
        http: httpx2.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        headers: dict[str, str] | None = None,
        timeout_cap: float | None = None,
        embed_batch_max: int = GEMINI_EMBED_BATCH_MAX,
    ) -> None:
        self.http = http
        self._embed_batch_max = embed_batch_max
        self._base = base_url.rstrip("/")
        self._headers = {**(headers or {}), "x-goog-api-key": api_key, "content-type": "application/json"}
        self._timeout_cap = timeout_cap or float("inf")

    def _url(self, request: ProviderRequest, method: str) -> str:
        model = request.model_id.removeprefix("models/")
        return f"{self._base}/models/{model}:{method}"

    def _build(self, request: ProviderRequest, method: str) -> httpx2.Request:
        content = json.dumps(request_body(request), ensure_ascii=False).encode()
        return self.http.build_request(
            "POST",
            self._url(request, method),
            content=content,
            headers=self._headers,
            timeout=min(request.timeout_s, self._timeout_cap),
        )

    async def complete(self, request: ProviderRequest) -> Completion:
        response = await self.http.send(self._build(request, "generateContent"))
        if response.status_code >= 400:
            raise GeminiAPIError(response.status_code, response, _json_or_text(response.content))
        return completion_from_gemini_json(response.content, chat=request.chat)

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[str | ToolCallDelta | StreamEnd, None]:
        outgoing = self._build(request, "streamGenerateContent")
        outgoing.url = outgoing.url.copy_add_param("alt", "sse")
        response = await self.http.send(outgoing, stream=True)
        single_call = request.chat.parallel_tool_calls is False
        finish_reason: str | None = None
        usage: Usage | None = None
        calls: list[dict[str, Any]] = []
        stream_id = ""
        events = SSEDecoder()
        chunks = response.aiter_bytes()
        try:
            if response.status_code >= 400:
                raise GeminiAPIError(response.status_code, response, _json_or_text(await response.aread()))
            async for raw in chunks:
                for data in events.feed(raw):
                    chunk = _stream_chunk(data)
                    stream_id = stream_id or response_id_of(chunk)
                    blocked = blocked_error(chunk)
                    if blocked is not None:
                        raise blocked
                    if isinstance(chunk.get("usageMetadata"), dict):
                        usage = usage_from_gemini(chunk["usageMetadata"])
                    candidates = chunk.get("candidates")
                    if (
                        not candidates
                        or not isinstance(candidates, list)
                        or not isinstance(candidates[0], dict)
                    ):
                        continue
                    candidate = candidates[0]
                    content = candidate.get("content")
                    parts = content.get("parts") if isinstance(content, dict) else None
                    for part in parts if isinstance(parts, list) else ():
                        if not isinstance(part, dict) or part.get("thought"):
                            continue
                        text = part.get("text")
                        if isinstance(text, str) and text:
                            yield text
                        elif "functionCall" in part and not (single_call and calls):
                            # Gemini sends each call whole: one piece with id, name and arguments.
                            call = tool_call_from_part(
                                part["functionCall"],
                                response_id=stream_id,
                                candidate=0,
                                index=len(calls),
                            )
                            yield ToolCallDelta(
                                index=len(calls),
                                id=call["id"],
                                name=call["function"]["name"],
                                arguments=call["function"]["arguments"],
                            )
                            calls.append(call)
                    if candidate.get("finishReason"):
                        finish_reason = finish_reason_from_gemini(
                            candidate["finishReason"], has_calls=bool(calls)
                        )
        except httpx2.TimeoutException as exc:
            raise TransientError("No answer within the timeout (the stream stalled).", timeout=True) from exc
        except (httpx2.RequestError, ssl.SSLError) as exc:
            raise TransientError(
                f"Connection to the provider failed: {type(exc).__name__}: {exc}"[:340]
            ) from exc
        finally:
            # Early close or cancellation: closing the response drops the upstream request.
            await chunks.aclose()
            await response.aclose()
        if finish_reason is None:
            raise TransientError("The stream ended before the model finished its answer.")
        if finish_reason == "content_filter":
            raise ModelPermanentError("Blocked by the provider's content filter (the answer was stopped).")
        if calls and finish_reason == "stop":
            finish_reason = "tool_calls"
        yield StreamEnd(finish_reason=finish_reason, usage=usage or Usage(), tool_calls=calls)

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """batchEmbedContents (`embed.py`), a batch above the limit split and joined in order."""

        async def send(part: EmbeddingRequest) -> Embeddings:
            model = part.model_id.removeprefix("models/")
            outgoing = self.http.build_request(
                "POST",
                f"{self._base}/models/{model}:batchEmbedContents",
                content=json.dumps(embed_body(part), ensure_ascii=False).encode(),
                headers=self._headers,
                timeout=min(part.timeout_s, self._timeout_cap),
            )
            response = await self.http.send(outgoing)
            if response.status_code >= 400:
                raise GeminiAPIError(response.status_code, response, _json_or_text(response.content))
            return embeddings_from_gemini_json(response.content, part)

        return await batches_embed(request, batch_max=self._embed_batch_max, send=send)

    async def aclose(self) -> None:
        await self.http.aclose()


def _json_or_text(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return {"error": {"message": content[:300].decode("utf-8", "replace")}}


def _stream_chunk(data: bytes) -> dict[str, Any]:
    """One streamed GenerateContentResponse; an `{"error": …}` event mid-stream is transient
    (model-permanent for an over-long prompt)."""
    try:
        chunk = json.loads(data)
    except ValueError:
        chunk = None
    if not isinstance(chunk, dict):
        preview = data[:200].decode("utf-8", "replace")
        raise TransientError(f"The provider sent a stream event we could not read: {preview!r}")
    error = chunk.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else None
        message = message if isinstance(message, str) and message else "An error occurred during streaming"
        if "exceeds the maximum number of tokens" in message:
            raise ModelPermanentError(f"Context too long for this model: {message}")
        raise TransientError(f"The provider reported an error mid-stream: {message}")
    return chunk
