"""A lean ASGI front for /v1/: answers the OpenAI-compatible endpoints before Django's
request machinery (middleware stack, URL resolution, request/response objects), which
would otherwise cost more than the rest of a gateway request put together.

Everything else goes to the wrapped Django application. The handlers are the same ones the
Django views in gateway/views.py serve (gateway/chat.py), so behaviour is identical; this
path also refuses an oversized body from its Content-Length before reading it, and cancels
a streaming response (recording the attempt as cancelled) when the client disconnects.
Bearer-key endpoints need no session, CSRF or host-based behaviour, so skipping the
middleware loses nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from gateway import chat, listing
from gateway.errors import GatewayError

log = logging.getLogger("gateway")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]

PATHS = ("/v1/chat/completions", "/v1/models", "/v1/chat/completions/", "/v1/models/")
MODEL_PREFIX = "/v1/models/"


class _Disconnected(Exception):
    pass


# Garbage collection in a serving process: with Django, the SDKs and their types loaded, a
# full (generation 2) collection walks every long-lived object and stopped the event loop for
# ~75 ms about every 2 s under load (the gateway's p99). Objects that exist once the process
# has warmed up live as long as it does, so they are moved out of the collector's reach
# (gc.freeze, at start and again after WARM_REQUESTS gateway requests, when the SDK
# clients, config snapshot and lazily imported modules exist); a larger first-generation
# threshold lets a request's temporary objects die before a collection promotes them.
WARM_REQUESTS = 500
GC_THRESHOLDS = (7_000, 20, 20)


class _Warmth:
    served = 0


def gc_settle() -> None:
    """Freeze what exists now out of the collector's reach and apply GC_THRESHOLDS."""
    gc.freeze()
    if gc.get_threshold()[0] < GC_THRESHOLDS[0]:
        gc.set_threshold(*GC_THRESHOLDS)


def gateway_front(app: ASGIApp) -> ASGIApp:
    gc_settle()

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            scope["path"] not in PATHS and not scope["path"].startswith(MODEL_PREFIX)
        ):
            await app(scope, receive, send)
            return
        if _Warmth.served <= WARM_REQUESTS:
            _Warmth.served += 1
            if _Warmth.served == WARM_REQUESTS:
                gc_settle()
        try:
            response = await _handle(scope, receive)
        except _Disconnected:
            return
        except Exception:  # a bug: answer in the API's shape and keep serving
            log.exception("gateway: unexpected error on %s", scope["path"])
            response = chat.error_response(
                GatewayError(500, "Internal error; it has been logged.", code="internal_error")
            )
        await _send(response, receive, send)

    return application


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise chat.body_too_large(size)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _handle(scope: Scope, receive: Receive) -> chat.GatewayResponse:
    path = scope["path"].rstrip("/")
    method = scope["method"]
    authorization = _header(scope, b"authorization")
    if path == "/v1/models":
        if method != "GET":
            return chat.method_not_allowed("GET")
        return await listing.models_list(authorization=authorization)
    if path.startswith(MODEL_PREFIX):
        if method != "GET":
            return chat.method_not_allowed("GET")
        return await listing.model_retrieve(model_id=path[len(MODEL_PREFIX) :], authorization=authorization)
    if method != "POST":
        return chat.method_not_allowed("POST")
    limit = chat.max_body_bytes()
    try:
        declared = int(_header(scope, b"content-length") or 0)
    except ValueError:
        declared = 0
    try:
        if declared > limit:
            raise chat.body_too_large(declared)
        body = await _read_body(receive, limit)
    except GatewayError as exc:
        return chat.error_response(exc)
    return await chat.chat_completions(body=body, authorization=authorization)


def _start(response: chat.GatewayResponse, length: int | None) -> dict[str, Any]:
    headers = [(b"content-type", response.content_type.encode())]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    headers += [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in response.headers.items()]
    return {"type": "http.response.start", "status": response.status, "headers": headers}


async def _send(response: chat.GatewayResponse, receive: Receive, send: Send) -> None:
    if response.stream is None:
        try:
            await send(_start(response, len(response.body)))
            await send({"type": "http.response.body", "body": response.body})
        finally:
            # After the body: the client has its answer; the connection's next request waits
            # for this (the server runs one request per connection at a time).
            await chat.response_finish(response)
        return
    stream = response.stream
    await send(_start(response, None))

    async def pump() -> None:
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    pumping = asyncio.ensure_future(pump())
    watching = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pumping, watching):
            if not task.done():
                task.cancel()
        for task in (pumping, watching):
            try:
                await task
            except asyncio.CancelledError:
                pass
            except OSError:  # the client went away mid-write
                pass
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
