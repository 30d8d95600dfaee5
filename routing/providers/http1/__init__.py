"""A small HTTP/1.1 client for the lean provider path: keep-alive connections on asyncio, the
response parsed by httptools (the parser uvicorn uses), nothing else on the hot path.

Why not aiohttp's `ClientSession` for the lean path: a `post` and `read` of a chat completion
costs ~240 µs of CPU here, against ~50 µs for the same bytes over a bare protocol (in-process
measurement, the fake provider in another process). aiohttp builds a request object, a
headers multidict, a URL, trace hooks and timer contexts per call; a provider's request is the
same URL and headers every time. So a `Target` pre-encodes the request line and the static
headers once, and a request is one `write` of that head, the per-request headers and the body.

What it does, as aiohttp's client did for the lean path (so the chokepoint maps failures the
same way, with the same messages, `tests/routing/providers/test_lean_http.py`):

- connections are pooled per origin (most recently used first), at most `max_connections`
  open (callers over the limit wait for one), an idle one closed after `keepalive_s`;
- TLS with the shared SSL context; the connect timeout bounds the TCP and TLS handshakes
  (`aiohttp.ConnectionTimeoutError`); a refused or failed connect is aiohttp's
  `ClientConnectorError`, with its message;
- the read timeout is aiohttp's `sock_read`: no bytes for that long is
  `aiohttp.SocketTimeoutError` ("Timeout on reading data from socket");
- a connection the server closes before the response is `ServerDisconnectedError`; a body
  cut short is `ClientPayloadError` ("Response payload is not completed: …"), a reset
  `ClientOSError`;
- bodies by Content-Length, chunked, or read to the close; gzip and deflate bodies are
  decompressed (we ask for them as aiohttp does);
- streamed bodies come as they arrive (`Response.chunks`), the socket paused while more than
  `STREAM_BUFFER` bytes wait unread;
- a response read to its end on a keep-alive connection gives the connection back
  (`release`); `close`, an error or a cancellation drops it.

Not here (the lean path leaves such providers on the SDK's path): proxies, HTTP/2, redirects,
cookies, 1xx beyond skipping them.
"""

from __future__ import annotations

import asyncio
import collections
import ssl as ssl_module

import aiohttp
from aiohttp.client_reqrep import ConnectionKey

from routing.providers.http1.pool import Connection, Pool
from routing.providers.http1.response import STREAM_BUFFER, Response
from routing.providers.http1.target import Target

__all__ = ["STREAM_BUFFER", "Http1Client", "Response", "Target"]


class Http1Client:
    """Pooled HTTP/1.1 connections on one event loop (made on it, used only from it)."""

    def __init__(
        self,
        *,
        ssl_context: ssl_module.SSLContext | None = None,
        max_connections: int = 1000,
        keepalive_s: float = 5.0,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.ssl_context = ssl_context
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self.pools: dict[tuple[str, str, int], Pool] = {}
        self.open: set[Connection] = set()
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.closed = False

    def slot_freed(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connection(self, target: Target, connect_timeout: float | None) -> Connection:
        pool = self.pools.get(target.origin)
        if pool is None:
            pool = self.pools[target.origin] = Pool(self, target)
        while True:
            conn = pool.take()
            if conn is not None:
                return conn
            if len(self.open) < self.max_connections:
                return await self._connect(pool, target, connect_timeout)
            waiter = self.loop.create_future()
            self.waiters.append(waiter)
            await waiter

    async def _connect(self, pool: Pool, target: Target, connect_timeout: float | None) -> Connection:
        conn = Connection(pool)
        self.open.add(conn)
        key = ConnectionKey(target.host, target.port, target.tls, True, None, None, None)
        try:
            async with asyncio.timeout(connect_timeout):
                await self.loop.create_connection(
                    lambda: conn,
                    target.host,
                    target.port,
                    ssl=(self.ssl_context or True) if target.tls else None,
                    server_hostname=target.server_hostname if target.tls else None,
                )
        except TimeoutError as exc:
            pool.forget(conn)
            conn.abort()
            raise aiohttp.ConnectionTimeoutError(
                f"Connection timeout to host {target.host}:{target.port}"
            ) from exc
        except OSError as exc:
            pool.forget(conn)
            raise aiohttp.ClientConnectorError(key, exc) from exc
        except BaseException:
            pool.forget(conn)
            conn.abort()
            raise
        return conn

    async def post(
        self,
        target: Target,
        body: bytes,
        *,
        headers: bytes = b"",
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
    ) -> Response:
        """Send the target's head, `headers` (encoded `Name: value\\r\\n` lines) and the body;
        the response once its status and headers are in. Release or close it when done."""
        if self.closed:
            raise RuntimeError("Session is closed")
        conn = await self._connection(target, connect_timeout)
        response = Response(conn, read_timeout)
        conn.response = response
        conn.transport.write(b"%s%sContent-Length: %d\r\n\r\n%s" % (target.head, headers, len(body), body))
        try:
            await response._head()
        except BaseException:
            response.close()
            raise
        return response

    async def aclose(self) -> None:
        self.closed = True
        for conn in list(self.open):
            conn.abort()
        self.open.clear()
        for pool in self.pools.values():
            pool.idle.clear()
            if pool.sweep is not None:
                pool.sweep.cancel()
        self.pools.clear()
