"""A minimal pipelined Redis client on asyncio, for the gateway's per-request counters.

redis-py costs more CPU per round trip than the rest of a gateway request's own work, and its
sync client blocks the event loop while it waits. This client keeps one connection per
event loop and matches replies to callers in order (Redis answers in order), so concurrent
requests share the connection without locks. What every caller sends during one turn of the
event loop goes out in one `write()` at its end (at concurrency 32, several requests' admissions
and settlements per system call).
Only what the counters need: integer, simple-string, bulk and nil replies; errors raise.
Connecting and each round trip give up after `timeout_s` (the REDIS_TIMEOUT_MS setting):
a stalled Redis fails the command quickly instead of holding the request. A stalled event
loop is not a stalled Redis: when the deadline's timer itself runs late (the loop was busy
elsewhere, say importing a provider's SDK on a first request, so the reply may be sitting
unread in the socket), the command gets one more `timeout_s` from then before it fails.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any
from urllib.parse import unquote, urlsplit


class RedisReplyError(Exception):
    pass


# A deadline timer that runs this late (as a share of the timeout) means the event loop was
# stalled, not Redis: the command gets one more timeout from then.
STALL_SHARE = 0.5


def _encode(args: tuple[Any, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class AsyncRedis:
    def __init__(self, url: str, *, timeout_s: float = 2.0) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.db = int((parts.path or "/0").lstrip("/") or 0)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.tls = parts.scheme == "rediss"
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._connecting: asyncio.Future[None] | None = None
        self._reading: asyncio.Task[None] | None = None
        self._out: list[bytes] = []  # commands to write at the end of this turn of the loop
        self.loop = asyncio.get_running_loop()

    async def _connect(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            return
        if self._connecting is not None:
            await asyncio.shield(self._connecting)
            return
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_future()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.tls or None), self.timeout_s
            )
            self._reader, self._writer = reader, writer
            self._reading = asyncio.ensure_future(self._read_loop())
            setup: list[tuple[Any, ...]] = []
            if self.password:
                setup.append(
                    ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
                )
            if self.db:
                setup.append(("SELECT", self.db))
            if setup:
                await self._send(setup)
            self._connecting.set_result(None)
        except BaseException as exc:
            self._connecting.set_exception(exc)
            self._connecting.exception()  # retrieved: no "never retrieved" warning
            raise
        finally:
            self._connecting = None

    async def _read_reply(self) -> Any:
        assert self._reader is not None
        line = await self._reader.readuntil(b"\r\n")
        kind, rest = line[:1], line[1:-2]
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest.decode()
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            return (await self._reader.readexactly(size + 2))[:-2]
        if kind == b"-":
            return RedisReplyError(rest.decode(errors="replace"))
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [await self._read_reply() for _ in range(count)]
        if kind == b"_":
            return None
        raise RedisReplyError(f"unexpected reply {line!r}")

    async def _read_loop(self) -> None:
        try:
            while True:
                reply = await self._read_reply()
                future = self._waiting.popleft()
                if not future.done():
                    if isinstance(reply, RedisReplyError):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except (Exception, asyncio.CancelledError) as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = self._reader = None
        self._out.clear()  # their callers fail below; nothing of theirs goes to a new connection
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError(f"redis connection lost: {exc!r}"))
                future.exception()

    async def _send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        assert self._writer is not None
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        self._waiting.extend(futures)
        if not self._out:
            loop.call_soon(self._flush)
        self._out.append(b"".join(_encode(c) for c in commands))
        last = futures[-1]  # replies come in order: the last one done means all are
        deadline = loop.time() + self.timeout_s
        timer = loop.call_at(deadline, self._expire, last, deadline, 1)
        try:
            await last
        finally:
            timer.cancel()
        return [f.result() for f in futures]

    def _flush(self) -> None:
        """Write what this turn of the loop queued, in one system call."""
        out, self._out = self._out, []
        if out and self._writer is not None:
            self._writer.write(b"".join(out))

    def _expire(self, future: asyncio.Future[Any], deadline: float, grace: int) -> None:
        """The deadline of `future` (a reply) passed: fail it, unless the timer ran late."""
        if future.done():
            return
        now = self.loop.time()
        if grace and now - deadline > self.timeout_s * STALL_SHARE:
            # The loop was stalled past the deadline: the reply may be unread in the socket.
            self.loop.call_at(now + self.timeout_s, self._expire, future, now + self.timeout_s, grace - 1)
            return
        future.set_exception(TimeoutError(f"no reply from redis within {self.timeout_s:g} s"))

    async def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send the commands at once; their replies in order."""
        if not commands:
            return []
        await self._connect()
        try:
            return await self._send(commands)
        except (TimeoutError, ConnectionError, OSError) as exc:
            self._fail(exc)
            raise

    async def close(self) -> None:
        if self._reading is not None:
            self._reading.cancel()
        if self._writer is not None:
            self._writer.close()
        self._writer = self._reader = None


_clients: dict[tuple[int, str], AsyncRedis] = {}


def async_redis(url: str, *, timeout_s: float = 2.0) -> AsyncRedis:
    """One client per event loop and URL."""
    key = (id(asyncio.get_running_loop()), url)
    client = _clients.get(key)
    if client is None or client.loop is not asyncio.get_running_loop():
        if len(_clients) > 64:  # loops come and go in tests
            _clients.clear()
        client = _clients[key] = AsyncRedis(url, timeout_s=timeout_s)
    client.timeout_s = timeout_s
    return client
