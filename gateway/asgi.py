"""A lean ASGI front for /v1/: answers the OpenAI-compatible endpoints before Django's
request machinery (middleware stack, URL resolution, request/response objects), which
would otherwise cost more than the rest of a gateway request put together.

Paths of the route table (gateway/routes.py) are served here; everything else goes to the
wrapped Django application. The handlers are the same ones the Django views in
gateway/views.py serve, so behaviour is identical; this path reads the body as it arrives
(refused as soon as it passes the limit) and cancels a streaming response (recording the
attempt as cancelled) when the client disconnects.
A response's bookkeeping (`GatewayResponse.after`: the spend settles the key's counters)
runs in a task of its own once the body is sent, so it behaves the same whatever the server
does next: uvicorn waits for the application to return before it reads the connection's
next request, granian does not, and a server may cancel the application once the response is
complete; neither holds back nor loses the settlement.
Bearer-key endpoints need no session, CSRF or host-based behaviour, so skipping the
middleware loses nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from gateway.http import GatewayResponse, error_response, internal_error, response_finish
from gateway.routes import route_dispatch, route_match

log = logging.getLogger("gateway")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


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
        matched = route_match(scope["path"]) if scope["type"] == "http" else None
        if matched is None:
            await app(scope, receive, send)
            return
        if _Warmth.served <= WARM_REQUESTS:
            _Warmth.served += 1
            if _Warmth.served == WARM_REQUESTS:
                gc_settle()
        try:
            route, params = matched
            authorization, api_key, content_length = _headers(scope)
            response = await route_dispatch(
                route,
                params,
                method=scope["method"],
                path=scope["path"],
                authorization=authorization,
                api_key=api_key,
                content_length=content_length,
                chunks=_chunks(receive),
            )
        except _Disconnected:
            return
        except Exception:  # a bug: answer in the API's shape and keep serving
            log.exception("gateway: unexpected error on %s", scope["path"])
            response = error_response(internal_error())
        await _send(response, receive, send)

    return application


_READ = {b"authorization": 0, b"x-api-key": 1, b"content-length": 2}


def _headers(scope: Scope) -> tuple[str | None, str | None, str | None]:
    """(authorization, x-api-key, content-length), in one pass over the headers."""
    found: list[str | None] = [None, None, None]
    for key, value in scope["headers"]:
        slot = _READ.get(key.lower())
        if slot is not None and found[slot] is None:
            found[slot] = value.decode("latin-1")
    return found[0], found[1], found[2]


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _start(response: GatewayResponse, length: int | None) -> dict[str, Any]:
    headers = [(b"content-type", response.content_type.encode())]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    headers += [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in response.headers.items()]
    return {"type": "http.response.start", "status": response.status, "headers": headers}


_finishing: set[asyncio.Task[None]] = set()  # bookkeeping after responses, still running


def _finish_later(response: GatewayResponse) -> None:
    """Run the response's `after` in a task of its own (started at once: its first Redis
    write goes out before the connection's next request is read)."""
    if response.after is None:
        return
    task = asyncio.ensure_future(response_finish(response))
    _finishing.add(task)
    task.add_done_callback(_finishing.discard)


async def responses_wait() -> None:
    """Wait for the bookkeeping of the responses sent so far (tests, shutdown)."""
    while _finishing:
        await asyncio.gather(*_finishing, return_exceptions=True)


async def _send(response: GatewayResponse, receive: Receive, send: Send) -> None:
    try:
        if response.stream is None:
            await send(_start(response, len(response.body)))
            await send({"type": "http.response.body", "body": response.body})
        else:
            await stream_send(response.stream, receive, send, start=_start(response, None))
    finally:
        # After the body (or a failed send): the client has its answer, or is gone. The
        # bookkeeping (the spend's settlement) runs off the response's path.
        _finish_later(response)


# Bytes of a stream read ahead of the client (its socket backed up) before the stream's
# reader waits for them to be sent.
STREAM_AHEAD = 1 << 16


class _Outbox:
    """What a stream has produced and the client has not been sent yet, shared by the task
    reading the stream and the one writing to the client."""

    __slots__ = ("chunks", "ended", "error", "gone", "size", "space", "wake")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.ended = False  # the stream is read to its end (or failed: `error`)
        self.error: BaseException | None = None
        self.gone = False  # the client disconnected
        self.wake: asyncio.Future[None] | None = None  # the writer, waiting for any of these
        self.space: asyncio.Future[None] | None = None  # the reader, waiting for the writer

    def notify(self) -> None:
        wake = self.wake
        if wake is not None and not wake.done():
            wake.set_result(None)


async def stream_send(
    stream: AsyncIterator[bytes], receive: Receive, send: Send, *, start: dict[str, Any] | None = None
) -> None:
    """Send a streamed body, coalescing what is ready: a task reads the stream into the
    outbox and this one writes the outbox out whenever it wakes, so the chunks a stream
    produces in one turn of the event loop (the SSE events of one upstream read) go out in
    one ASGI message (one socket write) instead of one each; the last batch carries the end
    of the body. Nothing waits for more: a chunk goes out in the turn after it was made.
    `start` (the `http.response.start` message) is sent with the first batch, in the same
    turn, so a server that writes a turn's output at once sends them in one write (the
    gateway's streams have their first chunk ready: the head is never held back long).

    A disconnect (watched by a task of its own) cancels the reading task, which closes the
    stream there (the engine records the attempt as cancelled)."""
    loop = asyncio.get_running_loop()
    box = _Outbox()

    async def read() -> None:
        try:
            async for chunk in stream:
                box.chunks.append(chunk)
                box.size += len(chunk)
                box.notify()
                if box.size > STREAM_AHEAD:
                    space = box.space = loop.create_future()
                    await space
        except BaseException as exc:
            box.error = exc
            raise
        finally:
            box.ended = True
            box.notify()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        box.gone = True
        box.notify()

    reading = asyncio.ensure_future(read())
    watching = asyncio.ensure_future(watch())
    try:
        while not box.gone:
            if not box.chunks and not box.ended:
                wake = box.wake = loop.create_future()
                await wake
                box.wake = None
                continue
            if box.ended and box.error is not None:
                break  # raised from the reading task below (a bug: nothing more is sent)
            data = b"".join(box.chunks) if len(box.chunks) != 1 else box.chunks[0]
            box.chunks.clear()
            box.size = 0
            last = box.ended
            try:
                if start is not None:
                    await send(start)
                    start = None
                await send({"type": "http.response.body", "body": data, "more_body": not last})
            except OSError:  # the client went away mid-write
                break
            if last:
                break
            space, box.space = box.space, None
            if space is not None and not space.done():
                space.set_result(None)
    finally:
        for task in (reading, watching):
            if not task.done():
                task.cancel()
        for task in (reading, watching):
            try:
                await task
            except asyncio.CancelledError:
                pass
            except OSError:  # the client went away mid-write
                pass
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
