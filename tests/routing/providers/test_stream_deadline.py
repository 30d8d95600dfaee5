"""A stream's deadline is one timer: it interrupts a wait on the upstream, never the consumer."""

import asyncio

import pytest

from routing.providers.transport.deadline import StreamDeadline


async def upstream(hold: asyncio.Event, items=(b"one", b"two")):
    for item in items:
        await hold.wait()
        yield item


def test_a_wait_on_the_upstream_past_the_deadline_is_a_timeout():
    async def run():
        loop = asyncio.get_running_loop()
        never = asyncio.Event()
        deadline = StreamDeadline(loop.time() + 0.01)
        try:
            with pytest.raises(TimeoutError):
                await deadline.next(upstream(never))
        finally:
            deadline.cancel()

    asyncio.run(run())


def test_the_consumer_is_not_interrupted_and_the_next_read_after_the_deadline_times_out():
    async def run():
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        ready.set()
        items = upstream(ready)
        deadline = StreamDeadline(loop.time() + 0.01)
        first = await deadline.next(items)
        consumer = asyncio.Event()
        loop.call_at(loop.time() + 0.05, consumer.set)  # the consumer's own wait outlasts the deadline
        await consumer.wait()  # not cancelled by the deadline
        assert deadline.expired
        with pytest.raises(TimeoutError):
            await deadline.next(items)  # the upstream has "two" ready, but the deadline has passed
        return first

    assert asyncio.run(run()) == b"one"


def test_a_cancellation_from_elsewhere_stays_a_cancellation():
    async def run():
        loop = asyncio.get_running_loop()
        never = asyncio.Event()
        deadline = StreamDeadline(loop.time() + 60)
        task = asyncio.ensure_future(deadline.next(upstream(never)))
        await asyncio.sleep(0)  # the task is waiting on the upstream
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline.cancel()

    asyncio.run(run())


def test_items_before_the_deadline_come_through_and_the_end_is_stop_async_iteration():
    async def run():
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        ready.set()
        items = upstream(ready)
        deadline = StreamDeadline(loop.time() + 60)
        got = [await deadline.next(items), await deadline.next(items)]
        with pytest.raises(StopAsyncIteration):
            await deadline.next(items)
        deadline.cancel()
        return got

    assert asyncio.run(run()) == [b"one", b"two"]
