"""A response read off its connection: status and headers, then the body, whole or as it comes."""

from __future__ import annotations

import asyncio
import collections
import zlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.http_exceptions import ContentLengthError, TransferEncodingError

if TYPE_CHECKING:
    from routing.providers.http1.pool import Connection

__all__ = ["STREAM_BUFFER", "Response"]

# Unread bytes of a streamed body above which the socket stops reading.
STREAM_BUFFER = 1 << 16


class Response:
    """A response on its connection: status and headers first, then the body."""

    __slots__ = (
        "_buffered",
        "_chunks",
        "_conn",
        "_decoder",
        "_error",
        "_length_expected",
        "_received",
        "_head_waiter",
        "_body_waiter",
        "_read_timer",
        "_read_timeout",
        "_streaming",
        "complete",
        "informational",
        "keep_alive",
        "last_data",
        "length_known",
        "raw_headers",
        "status",
    )

    def __init__(self, conn: Connection, read_timeout: float | None) -> None:
        self._conn = conn
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.complete = False
        self.informational = False
        self.keep_alive = False
        self.length_known = False
        self.last_data = conn.loop.time()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._decoder: Any = None
        self._length_expected: int | None = None  # the Content-Length, for a body cut short
        self._received = 0  # the body's bytes as they came (before decompression)
        self._error: BaseException | None = None
        self._head_waiter: asyncio.Future[None] | None = conn.loop.create_future()
        self._body_waiter: asyncio.Future[None] | None = None
        self._streaming = False
        self._read_timeout = read_timeout
        self._read_timer: asyncio.TimerHandle | None = None
        if read_timeout:
            self._read_timer = conn.loop.call_at(self.last_data + read_timeout, self._read_check)

    # -- fed by the connection
    def headers_done(self, status: int, keep_alive: bool) -> None:
        self.status = status
        self.keep_alive = keep_alive
        for name, value in self.raw_headers:
            lowered = name.lower()
            if lowered == b"content-encoding":
                encoding = value.strip().lower()
                if encoding in (b"gzip", b"deflate"):
                    # wbits 47: a gzip or a zlib header, found out from the stream itself.
                    self._decoder = zlib.decompressobj(47)
            elif lowered in (b"content-length", b"transfer-encoding"):
                self.length_known = True
                if lowered == b"content-length" and value.strip().isdigit():
                    self._length_expected = int(value)
        _wake(self._head_waiter)

    def body_received(self, data: bytes) -> None:
        self._received += len(data)
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error as exc:
                self.fail(aiohttp.ClientPayloadError(f"Can not decode content-encoding: {exc}"))
                self._conn.abort()
                return
            if not data:
                return
        self._chunks.append(data)
        self._buffered += len(data)
        if self._streaming and self._buffered > STREAM_BUFFER and self._conn.transport is not None:
            self._conn.transport.pause_reading()
        _wake(self._body_waiter)

    def finished(self) -> None:
        if self._decoder is not None:
            rest = self._decoder.flush()
            if rest:
                self._chunks.append(rest)
        self.complete = True
        self._timer_cancel()
        _wake(self._head_waiter)
        _wake(self._body_waiter)

    def lost(self, exc: BaseException | None) -> None:
        """The connection closed before the response was complete."""
        if self.status and not self.length_known and exc is None:
            self.keep_alive = False
            self.finished()  # a body delimited by the close
            return
        if not self.status:
            error: BaseException = (
                aiohttp.ClientOSError(*exc.args)
                if isinstance(exc, OSError)
                else aiohttp.ServerDisconnectedError()
            )
        else:
            underlying = (
                TransferEncodingError("Not enough data to satisfy transfer length header.")
                if self._chunked()
                else ContentLengthError(
                    "Not enough data to satisfy content length header"
                    f" (received {self._received} of {self._length_expected} bytes)."
                )
            )
            message = f"Response payload is not completed: {underlying!r}"
            if exc is not None:
                message = f"{message}. {exc!r}"
            error = aiohttp.ClientPayloadError(message)
        self.fail(error)

    def fail(self, error: BaseException) -> None:
        if self._error is None and not self.complete:
            self._error = error
        self._timer_cancel()
        _fail(self._head_waiter, error)
        _fail(self._body_waiter, error)

    def _chunked(self) -> bool:
        return any(
            name.lower() == b"transfer-encoding" and b"chunked" in value.lower()
            for name, value in self.raw_headers
        )

    def _read_check(self) -> None:
        self._read_timer = None
        if self.complete or self._error is not None:
            return
        timeout = self._read_timeout or 0.0
        loop = self._conn.loop
        due = self.last_data + timeout
        if loop.time() < due:
            self._read_timer = loop.call_at(due, self._read_check)
            return
        if self._streaming and self._buffered:
            # Unread bytes are waiting on the reader, not on the server (aiohttp's clock
            # does not run while the reader is behind).
            self.last_data = loop.time()
            self._read_timer = loop.call_at(self.last_data + timeout, self._read_check)
            return
        self.fail(aiohttp.SocketTimeoutError("Timeout on reading data from socket"))
        self._conn.abort()

    def _timer_cancel(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    # -- read by the caller
    async def _head(self) -> None:
        waiter = self._head_waiter
        if self.status or self._error is not None:
            self._head_waiter = None
        if self._error is not None:
            raise self._error
        if self.status:
            return
        assert waiter is not None
        await waiter
        self._head_waiter = None

    async def read(self) -> bytes:
        """The whole body."""
        while not self.complete:
            if self._error is not None:
                raise self._error
            await self._wait_body()
        if self._error is not None and not self._chunks:
            raise self._error
        body = b"".join(self._chunks) if len(self._chunks) != 1 else self._chunks[0]
        self._chunks.clear()
        self._buffered = 0
        return body

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive."""
        self._streaming = True
        transport = self._conn.transport
        while True:
            if self._chunks:
                data = b"".join(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
                self._chunks.clear()
                paused = self._buffered > STREAM_BUFFER
                self._buffered = 0
                if paused and transport is not None and not self._conn.closed:
                    transport.resume_reading()
                yield data
                continue
            if self.complete:
                return
            if self._error is not None:
                raise self._error
            await self._wait_body()

    async def _wait_body(self) -> None:
        waiter = self._body_waiter = self._conn.loop.create_future()
        try:
            await waiter
        finally:
            self._body_waiter = None

    def release(self) -> None:
        """Done with it: the connection goes back to the pool if the response was read to its
        end and may be kept, else it is closed."""
        conn = self._conn
        self._timer_cancel()
        if conn.response is not self:
            return
        conn.response = None
        if self.complete and self.keep_alive and self._error is None and not conn.closed:
            conn.pool.give_back(conn)
        else:
            conn.abort()
            conn.pool.forget(conn)

    def close(self) -> None:
        """Drop the connection, whatever was read."""
        self.keep_alive = False
        self.release()


def _wake(future: asyncio.Future[None] | None) -> None:
    if future is not None and not future.done():
        future.set_result(None)


def _fail(future: asyncio.Future[None] | None, error: BaseException) -> None:
    if future is not None and not future.done():
        future.set_exception(error)
        future.exception()  # retrieved: nobody may be awaiting it
