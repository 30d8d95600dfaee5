"""Keep-alive connections: one asyncio protocol per connection, parsed by httptools, pooled per
origin (most recently used first, an idle one closed after the keep-alive)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from typing import TYPE_CHECKING, Any

import aiohttp
import httptools

from routing.providers.http1.response import Response

if TYPE_CHECKING:
    from routing.providers.http1 import Http1Client
    from routing.providers.http1.target import Target

__all__ = ["Connection", "Pool"]


class Connection(asyncio.Protocol):
    """One keep-alive connection and the response being read on it."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.loop: asyncio.AbstractEventLoop = pool.loop
        self.transport: Any = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.response: Response | None = None
        self.lost: BaseException | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes nobody asked for: the connection is not reusable
            self.abort()
            return
        response.last_data = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # pragma: no cover - we never ask to upgrade
            response.fail(aiohttp.ClientResponseError(None, (), message="Unexpected upgrade"))  # type: ignore[arg-type]
            self.abort()
        except httptools.HttpParserError as exc:
            response.fail(aiohttp.ClientPayloadError(f"Response could not be parsed: {exc}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        response = self.response
        if response is not None and not response.complete:
            response.lost(exc)

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            self.response.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        response = self.response
        if response is None:
            return
        status = self.parser.get_status_code()
        if status < 200:  # 100 Continue and friends: the real response follows
            response.raw_headers = []
            response.informational = True
            return
        response.headers_done(status, self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response.body_received(body)

    def on_message_complete(self) -> None:
        response = self.response
        if response is None:
            return
        if response.informational:
            response.informational = False
            return
        response.finished()

    # -- ours
    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class Pool:
    """The connections to one origin."""

    def __init__(self, client: Http1Client, target: Target) -> None:
        self.client = client
        self.loop: asyncio.AbstractEventLoop = client.loop
        self.target = target
        self.idle: collections.deque[Connection] = collections.deque()
        self.sweep: asyncio.TimerHandle | None = None

    def forget(self, conn: Connection) -> None:
        if conn in self.client.open:
            self.client.open.discard(conn)
            self.client.slot_freed()
        if conn.idle_since:
            conn.idle_since = 0.0
            with contextlib.suppress(ValueError):
                self.idle.remove(conn)

    def give_back(self, conn: Connection) -> None:
        conn.idle_since = self.loop.time()
        self.idle.append(conn)
        if self.client.waiters:
            self.client.slot_freed()
        if self.sweep is None:
            self.sweep = self.loop.call_later(self.client.keepalive_s, self._sweep)

    def take(self) -> Connection | None:
        now = self.loop.time()
        keepalive = self.client.keepalive_s
        while self.idle:
            conn = self.idle.pop()
            idle_since, conn.idle_since = conn.idle_since, 0.0
            if conn.closed or now - idle_since > keepalive:
                conn.abort()
                self.forget(conn)
                continue
            return conn
        return None

    def _sweep(self) -> None:
        self.sweep = None
        now = self.loop.time()
        keepalive = self.client.keepalive_s
        while self.idle and now - self.idle[0].idle_since > keepalive:
            conn = self.idle.popleft()
            conn.idle_since = 0.0
            conn.abort()
            self.forget(conn)
        if self.idle:
            self.sweep = self.loop.call_later(keepalive, self._sweep)
