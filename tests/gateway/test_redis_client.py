"""The pipelined asyncio Redis client, against the real Redis (skipped without REDIS_URL)."""

import asyncio
import os
import time
import uuid

import pytest
from asgiref.sync import async_to_sync

from gateway.redis_client import AsyncRedis, RedisReplyError

REDIS_URL = os.environ.get("REDIS_URL", "")
pytestmark = pytest.mark.skipif(not REDIS_URL.startswith("redis://"), reason="needs REDIS_URL")


def test_it_pipelines_commands_and_returns_replies_in_order():
    key = f"test:resp:{uuid.uuid4().hex}"

    async def run():
        client = AsyncRedis(REDIS_URL)
        try:
            return await client.pipeline(
                [
                    ("INCR", key),
                    ("INCRBY", key, 41),
                    ("GET", key),
                    ("SET", key, 0, "NX"),
                    ("DEL", key),
                    ("GET", key),
                ]
            )
        finally:
            await client.close()

    assert async_to_sync(run)() == [1, 42, b"42", None, 1, None]


def test_an_error_reply_raises_and_the_connection_keeps_working():
    key = f"test:resp:{uuid.uuid4().hex}"

    async def run():
        client = AsyncRedis(REDIS_URL)
        try:
            await client.pipeline([("SET", key, "text")])
            with pytest.raises(RedisReplyError):
                await client.pipeline([("INCR", key)])
            return await client.pipeline([("DEL", key)])
        finally:
            await client.close()

    assert async_to_sync(run)() == [1]


def test_it_reconnects_after_the_connection_drops():
    async def run():
        client = AsyncRedis(REDIS_URL)
        try:
            await client.pipeline([("PING",)])
            assert client._conn is not None
            client._conn.transport.abort()  # the server went away
            for _ in range(3):
                try:
                    return await client.pipeline([("PING",)])
                except (ConnectionError, OSError):
                    continue
        finally:
            await client.close()

    assert async_to_sync(run)() == ["PONG"]


def test_a_reply_that_arrives_while_the_event_loop_is_stalled_is_still_read():
    """A loop busy past the timeout (a first request importing an SDK) is not a stalled Redis:
    the reply sits in the socket, unread, and the command must not fail for it."""

    async def run():
        client = AsyncRedis(REDIS_URL, timeout_s=0.05)
        try:
            await client.pipeline([("PING",)])  # connected
            asyncio.get_running_loop().call_soon(time.sleep, 0.2)  # the loop stalls 4 timeouts long
            return await client.pipeline([("PING",)])
        finally:
            await client.close()

    assert async_to_sync(run)() == ["PONG"]


def test_concurrent_callers_in_one_turn_of_the_loop_each_get_their_own_replies():
    """Their commands go out together in one write; the replies still reach each caller."""
    key = f"test:resp:{uuid.uuid4().hex}"

    async def run():
        client = AsyncRedis(REDIS_URL)
        try:
            await client.pipeline([("PING",)])
            replies = await asyncio.gather(
                *(client.pipeline([("INCR", key), ("GET", key)]) for _ in range(50))
            )
            await client.pipeline([("DEL", key)])
            return replies
        finally:
            await client.close()

    assert async_to_sync(run)() == [[n, str(n).encode()] for n in range(1, 51)]


def test_nested_tables_from_a_script_come_back_as_nested_lists_of_typed_replies():
    script = "return {1, {2, 'x', {ok = 'fine'}}, {err = 'ERR inner'}, false}"

    async def run():
        client = AsyncRedis(REDIS_URL)
        try:
            return await client.pipeline([("EVAL", script, 0)])
        finally:
            await client.close()

    ((one, nested, error, nil),) = async_to_sync(run)()
    assert (one, nested, nil) == (1, [2, b"x", "fine"], None)
    assert isinstance(error, RedisReplyError) and str(error) == "ERR inner"
