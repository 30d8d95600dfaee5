"""A streamed call's deadline, as one timer for the whole stream.

`asyncio.timeout_at` around each chunk's read (a timeout must never cancel what the consumer
awaits between chunks) makes and cancels a timer per chunk, ~3 µs of pure-Python work each
time. `StreamDeadline` arms one timer when the stream starts; when it fires it cancels the
reading task only if that task is waiting on the upstream at that moment (the cancellation
then lands inside that wait, where it is turned into TimeoutError, as asyncio.timeout does,
and a cancellation of the task from elsewhere stays a cancellation); otherwise the next read
raises TimeoutError before it waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

__all__ = ["StreamDeadline"]

T = TypeVar("T")


class StreamDeadline:
    __slots__ = ("_fired", "_handle", "_task", "expired")

    def __init__(self, when: float) -> None:
        self.expired = False
        self._fired = False  # the timer cancelled the task: the CancelledError is ours
        self._task: asyncio.Task[object] | None = None  # set while waiting on the upstream
        self._handle = asyncio.get_running_loop().call_at(when, self._fire)

    def _fire(self) -> None:
        self.expired = True
        task = self._task
        if task is not None and not self._fired:
            self._fired = True
            task.cancel()

    async def next(self, upstream: AsyncIterator[T]) -> T:
        """The upstream's next item; TimeoutError once the deadline has passed (raises
        StopAsyncIteration at the end, as `anext`)."""
        if self.expired:
            raise TimeoutError
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        self._task = task
        try:
            return await anext(upstream)
        except asyncio.CancelledError:
            if self._fired and task.uncancel() <= cancelling:
                raise TimeoutError from None
            raise
        finally:
            self._task = None

    def cancel(self) -> None:
        self._handle.cancel()
