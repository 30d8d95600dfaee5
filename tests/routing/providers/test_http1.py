"""The lean path's HTTP/1.1 client against a scripted server on loopback: each test says what
the server writes back, byte for byte, and checks what the client makes of it."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from routing.providers.http1 import STREAM_BUFFER, Http1Client, Target
from tests.routing.providers.conftest import run

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server whose connections are handled by `handler`; it keeps what it read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[bytes] = []
        self.connections = 0
        self.server: asyncio.base_events.Server | None = None

    @classmethod
    def answering(cls, body: bytes) -> Server:
        """A server that answers every request of a kept-alive connection with `body`."""

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await server.request(reader)
                writer.write(answer(body))
                await writer.drain()

        server = cls(handler)
        return server

    async def __aenter__(self) -> Server:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/chat/completions?x=1"

    async def request(self, reader: asyncio.StreamReader) -> bytes:
        """Read one request (head and Content-Length body) and keep it."""
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return head + body


def answer(body: bytes, *, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (
        extra,
        len(body),
        body,
    )


def chunked(*parts: bytes) -> bytes:
    out = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    return out + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def target(server: Server, **headers: str) -> Target:
    return Target(server.url, {"Authorization": "Bearer k", "Content-Type": "application/json", **headers})


def test_a_request_carries_the_targets_head_the_extra_headers_and_the_body():
    async def handler(reader, writer):
        await server.request(reader)
        writer.write(answer(b'{"ok":true}'))
        await writer.drain()

    server = Server(handler)

    async def main() -> bytes:
        async with server:
            client = Http1Client()
            response = await client.post(
                target(server, **{"X-Custom": "yes"}), b'{"a":1}', headers=b"Idem: 7\r\n"
            )
            body = await response.read()
            response.release()
            await client.aclose()
            return body

    assert run(main()) == b'{"ok":true}'
    sent = server.requests[0]
    assert sent.startswith(b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    for line in (b"Authorization: Bearer k", b"X-Custom: yes", b"Idem: 7", b"Content-Length: 7"):
        assert line + b"\r\n" in sent
    assert sent.endswith(b'\r\n\r\n{"a":1}')


def test_a_response_read_to_its_end_gives_its_connection_back_for_the_next_request():
    server = Server.answering(b"x" * 10)

    async def main() -> list[bytes]:
        async with server:
            client = Http1Client()
            bodies = []
            for _ in range(3):
                response = await client.post(target(server), b"{}")
                bodies.append(await response.read())
                response.release()
            await client.aclose()
            return bodies

    assert run(main()) == [b"x" * 10] * 3
    assert server.connections == 1


def test_a_closed_response_drops_its_connection():
    server = Server.answering(b"{}")

    async def main() -> None:
        async with server:
            client = Http1Client()
            for _ in range(2):
                response = await client.post(target(server), b"{}")
                response.close()
            await client.aclose()

    run(main())
    assert server.connections == 2


def test_a_connection_idle_longer_than_the_keepalive_is_not_reused():
    server = Server.answering(b"{}")

    async def main() -> int:
        async with server:
            client = Http1Client(keepalive_s=0.0)
            for _ in range(2):
                response = await client.post(target(server), b"{}")
                await response.read()
                response.release()
            idle = sum(len(pool.idle) for pool in client.pools.values())
            await client.aclose()
            return idle

    assert run(main()) == 1
    assert server.connections == 2


def test_a_chunked_body_is_joined_and_streamed_as_it_arrives():
    release = asyncio.Event()

    async def handler(reader, writer):
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await release.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()

    server = Server(handler)

    async def main() -> list[bytes]:
        async with server:
            client = Http1Client()
            response = await client.post(target(server), b"{}")
            seen = []
            async for chunk in response.chunks():
                seen.append(chunk)
                release.set()  # the second chunk is only written once the first was read
            response.release()
            await client.aclose()
            return seen

    assert run(main()) == [b"first", b"second"]


def test_a_body_delimited_by_the_close_is_read_to_the_close():
    async def handler(reader, writer):
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        await writer.drain()

    server = Server(handler)

    async def main() -> bytes:
        async with server:
            client = Http1Client()
            response = await client.post(target(server), b"{}")
            body = await response.read()
            response.release()
            await client.aclose()
            return body

    assert run(main()) == b"all of it"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_body_is_decompressed(encoding):
    payload = b'{"text": "' + b"compress me " * 50 + b'"}'
    packed = gzip.compress(payload) if encoding == "gzip" else zlib.compress(payload)

    async def handler(reader, writer):
        await server.request(reader)
        writer.write(answer(packed, extra=b"Content-Encoding: %s\r\n" % encoding.encode()))
        await writer.drain()

    server = Server(handler)

    async def main() -> bytes:
        async with server:
            client = Http1Client()
            response = await client.post(target(server), b"{}")
            body = await response.read()
            response.release()
            await client.aclose()
            return body

    assert run(main()) == payload
    assert b"Accept-Encoding: gzip, deflate\r\n" in server.requests[0]


def test_an_error_status_comes_with_its_headers_and_body():
    async def handler(reader, writer):
        await server.request(reader)
        body = b'{"error":{"message":"slow down"}}'
        writer.write(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        await writer.drain()

    server = Server(handler)

    async def main():
        async with server:
            client = Http1Client()
            response = await client.post(target(server), b"{}")
            seen = (response.status, dict(response.raw_headers).get(b"Retry-After"), await response.read())
            response.release()
            await client.aclose()
            return seen

    assert run(main()) == (429, b"2", b'{"error":{"message":"slow down"}}')


def test_a_server_that_closes_before_answering_is_a_server_disconnected_error():
    async def handler(reader, writer):
        await server.request(reader)

    server = Server(handler)

    async def main() -> BaseException:
        async with server:
            client = Http1Client()
            with pytest.raises(aiohttp.ServerDisconnectedError) as caught:
                await client.post(target(server), b"{}")
            await client.aclose()
            return caught.value

    assert str(run(main())) == "Server disconnected"


@pytest.mark.parametrize(
    ("reply", "underlying"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", "ContentLengthError"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n", "TransferEncodingError"),
    ],
    ids=["content-length", "chunked"],
)
def test_a_body_cut_short_is_a_payload_error(reply, underlying):
    async def handler(reader, writer):
        await server.request(reader)
        writer.write(reply)
        await writer.drain()

    server = Server(handler)

    async def main() -> BaseException:
        async with server:
            client = Http1Client()
            response = await client.post(target(server), b"{}")
            with pytest.raises(aiohttp.ClientPayloadError) as caught:
                await response.read()
            response.release()
            await client.aclose()
            return caught.value

    error = run(main())
    assert str(error).startswith(f"Response payload is not completed: <{underlying}")


def test_no_bytes_for_the_read_timeout_is_a_socket_timeout_and_the_connection_is_dropped():
    closed = asyncio.Event()

    async def handler(reader, writer):
        await server.request(reader)
        await reader.read()  # until the client gives up
        closed.set()

    server = Server(handler)

    async def main() -> tuple[BaseException, bool]:
        async with server:
            client = Http1Client()
            with pytest.raises(aiohttp.SocketTimeoutError) as caught:
                await client.post(target(server), b"{}", read_timeout=0.05)
            await asyncio.wait_for(closed.wait(), 5)
            await client.aclose()
            return caught.value, closed.is_set()

    error, dropped = run(main())
    assert isinstance(error, TimeoutError)
    assert str(error) == "Timeout on reading data from socket"
    assert dropped


def test_a_refused_connection_is_aiohttps_connector_error():
    async def main() -> BaseException:
        async with Server(lambda r, w: asyncio.sleep(0)) as server:
            url = server.url
        client = Http1Client()
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await client.post(Target(url, {}), b"{}")
        await client.aclose()
        return caught.value

    error = run(main())
    assert str(error).startswith("Cannot connect to host 127.0.0.1:")
    assert "ssl:default" in str(error)


def test_callers_over_the_connection_limit_wait_for_a_connection():
    server = Server.answering(b"{}")

    async def main() -> list[bytes]:
        async with server:
            client = Http1Client(max_connections=2)

            async def one() -> bytes:
                response = await client.post(target(server), b"{}")
                body = await response.read()
                response.release()
                return body

            bodies = await asyncio.gather(*(one() for _ in range(6)))
            await client.aclose()
            return bodies

    assert run(main()) == [b"{}"] * 6
    assert server.connections <= 2


def test_a_streamed_body_larger_than_the_buffer_pauses_the_socket_and_arrives_whole():
    part = b"y" * 4096
    count = (STREAM_BUFFER // len(part)) * 4

    async def handler(reader, writer):
        await server.request(reader)
        writer.write(chunked(*([part] * count)))
        await writer.drain()

    server = Server(handler)

    async def main() -> int:
        async with server:
            client = Http1Client()
            response = await client.post(target(server), b"{}")
            total = 0
            async for chunk in response.chunks():
                total += len(chunk)
                await asyncio.sleep(0)  # a slow reader
            response.release()
            await client.aclose()
            return total

    assert run(main()) == len(part) * count


@pytest.mark.parametrize("header", [{"X-Bad": "a\r\nInjected: 1"}, {"X\nBad": "v"}])
def test_a_header_with_a_line_break_is_refused_when_the_target_is_made(header):
    with pytest.raises(ValueError, match="Newline or carriage return"):
        Target("http://127.0.0.1:1/v1", header)
