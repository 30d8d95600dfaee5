"""How the Redis client reads replies, against a scripted server that writes raw RESP bytes in
pieces (no Redis needed). Each piece is written once the client has read the one before, so
the reads the client sees are the pieces."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync

from gateway import redis_client
from gateway.redis_client import AsyncRedis, RedisReplyError

CLOSE = None  # a piece that closes the connection instead


def command(*args: object) -> bytes:
    """A command as the client writes it."""
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


@dataclass
class Reads:
    """What the client read, a chunk per `data_received`; `event` is set after each."""

    chunks: list[bytes] = field(default_factory=list)
    event: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
def reads(monkeypatch) -> Reads:
    record = Reads()
    received = redis_client._Connection.data_received

    def data_received(self, data):
        record.chunks.append(bytes(data))
        received(self, data)
        record.event.set()

    monkeypatch.setattr(redis_client._Connection, "data_received", data_received)
    return record


@dataclass
class Scripted:
    port: int
    requests: list[bytes] = field(default_factory=list)  # what the client sent, per step
    connections: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.asynccontextmanager
async def scripted(reads: Reads, *scripts: list[tuple[bytes, list[bytes | None]]]):
    """A server on 127.0.0.1 that plays one script per connection, in order: each step reads
    a request (as many bytes as the one expected) and answers it piece by piece."""
    remaining = list(scripts)
    handlers: list[asyncio.Task] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.append(task)
        server.connections += 1
        for request, pieces in remaining.pop(0):
            server.requests.append(await reader.readexactly(len(request)))
            for piece in pieces:
                if piece is CLOSE:
                    writer.close()
                    return
                reads.event.clear()
                writer.write(piece)
                await writer.drain()
                await reads.event.wait()
        await reader.read()  # until the client goes away
        writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    server = Scripted(port=listening.sockets[0].getsockname()[1])
    try:
        yield server
    finally:
        listening.close()
        # The client has closed: each handler ends (one still waiting after a failure is cancelled).
        _, pending = await asyncio.wait(handlers, timeout=5) if handlers else (set(), set())
        for task in pending:
            task.cancel()
        await listening.wait_closed()
    assert server.requests == [request for script in scripts for request, _ in script]


def test_several_replies_arriving_in_one_read_each_reach_their_caller(reads):
    answer = b":1\r\n+PONG\r\n$3\r\nxyz\r\n"

    async def run():
        request = command("INCR", "a") + command("PING") + command("GET", "b")
        async with scripted(reads, [(request, [answer])]) as server:
            client = AsyncRedis(server.url)
            try:
                return await asyncio.gather(
                    client.pipeline([("INCR", "a"), ("PING",)]), client.pipeline([("GET", "b")])
                )
            finally:
                await client.close()

    assert async_to_sync(run)() == [[1, "PONG"], [b"xyz"]]
    assert reads.chunks == [answer]


def test_a_reply_split_across_reads_is_read_whole(reads):
    """Split inside headers, a bulk string and a simple string; the bulk string's bytes look
    like replies of their own and stay bytes."""
    pieces = [b"*4\r", b"\n:4", b"2\r\n$7\r\n+OK", b"\r\n:1\r\n+", b"OK\r\n$-1\r", b"\n"]

    async def run():
        async with scripted(reads, [(command("LRANGE", "k", 0, -1), pieces)]) as server:
            client = AsyncRedis(server.url)
            try:
                return await client.pipeline([("LRANGE", "k", 0, -1)])
            finally:
                await client.close()

    assert async_to_sync(run)() == [[42, b"+OK\r\n:1", "OK", None]]
    assert reads.chunks == pieces


def test_a_read_that_ends_one_reply_and_starts_the_next_gives_each_its_own(reads):
    pieces = [b":7\r\n+PO", b"NG\r\n"]

    async def run():
        async with scripted(reads, [(command("INCR", "a") + command("PING"), pieces)]) as server:
            client = AsyncRedis(server.url)
            try:
                return await asyncio.gather(client.pipeline([("INCR", "a")]), client.pipeline([("PING",)]))
            finally:
                await client.close()

    assert async_to_sync(run)() == [[7], ["PONG"]]
    assert reads.chunks == pieces


def test_an_error_reply_fails_only_its_own_command(reads):
    """Its caller gets RedisReplyError; the other caller in the same read gets its reply, and
    the connection goes on serving."""
    error = b"-ERR value is not an integer or out of range\r\n"

    async def run():
        script = [
            (command("INCR", "a") + command("INCR", "b"), [error + b":1\r\n"]),
            (command("PING"), [b"+PONG\r\n"]),
        ]
        async with scripted(reads, script) as server:
            client = AsyncRedis(server.url)
            try:
                first, second = await asyncio.gather(
                    client.pipeline([("INCR", "a")]), client.pipeline([("INCR", "b")]), return_exceptions=True
                )
                return first, second, await client.pipeline([("PING",)]), server.connections
            finally:
                await client.close()

    first, second, then, connections = async_to_sync(run)()
    assert isinstance(first, RedisReplyError)
    assert str(first) == "ERR value is not an integer or out of range"
    assert (second, then, connections) == ([1], ["PONG"], 1)


def test_nested_arrays_are_read_as_nested_lists(reads):
    """Every kind of reply inside them keeps its type; an error inside stays in its list."""
    answer = b"*4\r\n*2\r\n:1\r\n*3\r\n+ok\r\n$1\r\nb\r\n*0\r\n*-1\r\n-ERR inner\r\n$0\r\n\r\n"

    async def run():
        async with scripted(reads, [(command("EVALSHA", "f", 0), [answer])]) as server:
            client = AsyncRedis(server.url)
            try:
                return await client.pipeline([("EVALSHA", "f", 0)])
            finally:
                await client.close()

    ((nested, none, error, empty),) = async_to_sync(run)()
    assert (nested, none, empty) == ([1, ["ok", b"b", []]], None, b"")
    assert isinstance(error, RedisReplyError) and str(error) == "ERR inner"


def test_a_lost_connection_fails_every_waiting_caller_and_the_next_call_reconnects(reads):
    async def run():
        script = [(command("INCR", "a") + command("INCR", "b"), [CLOSE])]
        async with scripted(reads, script, [(command("PING"), [b"+PONG\r\n"])]) as server:
            client = AsyncRedis(server.url)
            try:
                lost = await asyncio.gather(
                    client.pipeline([("INCR", "a")]), client.pipeline([("INCR", "b")]), return_exceptions=True
                )
                return lost, await client.pipeline([("PING",)]), server.connections
            finally:
                await client.close()

    lost, then, connections = async_to_sync(run)()
    assert [type(exc) for exc in lost] == [ConnectionError, ConnectionError]
    assert (then, connections) == (["PONG"], 2)


def test_bytes_that_are_not_resp_fail_the_waiting_callers_and_drop_the_connection(reads):
    async def run():
        async with scripted(reads, [(command("PING"), [b"?what\r\n"])]) as server:
            client = AsyncRedis(server.url)
            try:
                with pytest.raises(ConnectionError):
                    await client.pipeline([("PING",)])
                return client._conn
            finally:
                await client.close()

    assert async_to_sync(run)() is None


def test_a_refused_auth_drops_the_connection_and_the_next_call_authenticates_again(reads):
    """AUTH and SELECT go first on every connection; one that failed them is not used."""
    setup = command("AUTH", "secret") + command("SELECT", 2)
    refused = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n-NOAUTH no\r\n"

    async def run():
        script = [(setup, [b"+OK\r\n+OK\r\n"]), (command("PING"), [b"+PONG\r\n"])]
        async with scripted(reads, [(setup, [refused])], script) as server:
            client = AsyncRedis(f"redis://:secret@127.0.0.1:{server.port}/2")
            try:
                with pytest.raises(RedisReplyError, match="WRONGPASS"):
                    await client.pipeline([("PING",)])
                return await client.pipeline([("PING",)]), server.connections
            finally:
                await client.close()

    assert async_to_sync(run)() == (["PONG"], 2)


def test_arguments_hiredis_does_not_pack_are_written_as_their_str(reads):
    """hiredis packs str, bytes, int and float; anything else goes out as `str()` writes it."""
    args = ("HSET", "h", True, None, Decimal("1.50"), 0.25, b"\x00\xff", "é", 2**70)

    async def run():
        async with scripted(reads, [(command(*args), [b":1\r\n"])]) as server:
            client = AsyncRedis(server.url)
            try:
                return await client.pipeline([args])
            finally:
                await client.close()

    assert async_to_sync(run)() == [1]
