"""The Redis client's timeout against a server that accepts and never answers (no Redis needed)."""

import asyncio

import pytest
from asgiref.sync import async_to_sync

from gateway.redis_client import AsyncRedis


def test_a_server_that_never_answers_fails_the_command_after_the_timeout():
    async def run():
        async def silent(reader, writer):
            await reader.read()  # reads until the client goes away; never replies

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = AsyncRedis(f"redis://127.0.0.1:{port}/0", timeout_s=0.05)
        try:
            with pytest.raises(TimeoutError):
                await client.pipeline([("PING",)])
            assert client._conn is None  # the connection is dropped: the next command reconnects
        finally:
            await client.close()
            server.close()
            await server.wait_closed()

    async_to_sync(run)()
