"""The server's protocol: what one turn of the event loop writes goes out in one write."""

import asyncio
import socket

import pytest

from orchestrator_site.server import TurnWrites
from tests.browser import served


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def test_the_writes_of_one_turn_reach_the_connection_as_one_at_the_end_of_the_turn():
    async def run():
        real = Transport()
        held = TurnWrites(real, asyncio.get_running_loop())
        held.write(b"HTTP/1.1 200 OK\r\n\r\n")
        held.write(b"body")
        during = list(real.writes)
        await asyncio.sleep(0)  # the turn ends
        after_turn = list(real.writes)
        held.write(b"next")
        await asyncio.sleep(0)
        return during, after_turn, real.writes, held.get_extra_info("peername")

    during, after_turn, writes, peer = asyncio.run(run())
    assert during == []
    assert after_turn == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    assert writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next"]
    assert peer == ("127.0.0.1", 1)  # everything else is the real transport's


def test_closing_writes_what_is_held_first_and_aborting_drops_it():
    async def run():
        closed, aborted = Transport(), Transport()
        for real in (closed, aborted):
            held = TurnWrites(real, asyncio.get_running_loop())
            held.write(b"last words")
            held.close() if real is closed else held.abort()
        await asyncio.sleep(0)
        return closed, aborted

    closed, aborted = asyncio.run(run())
    assert (closed.writes, closed.closed) == ([b"last words"], True)
    assert (aborted.writes, aborted.aborted) == ([], True)


def test_nothing_is_written_to_a_connection_that_closed_meanwhile():
    async def run():
        real = Transport()
        held = TurnWrites(real, asyncio.get_running_loop())
        held.write(b"too late")
        real.closed = True  # the peer went away before the turn ended
        await asyncio.sleep(0)
        return real.writes

    assert asyncio.run(run()) == []


async def _app(scope, receive, send):
    if scope["type"] != "http":
        return
    await receive()
    if scope["path"] == "/stream":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0)  # each part in a turn of its own
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def port():
    with served(_app) as port:
        yield port


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while not (data.endswith(b"0\r\n\r\n") or (b"content-length" in data and data.endswith(b"}"))):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed early: {data!r}"
        data += chunk
    return data


def test_plain_and_streamed_answers_and_keep_alive_work_through_the_protocol(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /plain HTTP/1.1\r\nHost: t\r\n\r\n")
        plain = _read_response(sock)
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")  # the same connection, kept alive
        streamed = _read_response(sock)

    assert plain.startswith(b"HTTP/1.1 200 OK\r\n") and plain.endswith(b'\r\n\r\n{"ok":true}')
    assert streamed.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in streamed
    assert streamed.endswith(b"4\r\none \r\n4\r\ntwo \r\n5\r\nthree\r\n0\r\n\r\n")
