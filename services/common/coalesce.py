"""Many concurrent single-item calls turned into few batch calls, one batch in flight.

A per-message lookup that crosses to a thread (SQLite) or the network (PostgreSQL) costs a
hand-off each: at a thousand sends a second that is a thousand thread hops, each of which
may wait for the GIL's switch interval, queued one behind the other. Here a caller finding
nothing in flight calls at once with its own item; callers arriving while a call runs wait
together for the next one, which starts when it ends. Under light load a batch is one item
and costs no more than the call; under heavy load the batch grows, so the hops per second
stay near 1 / call time.

Bounded: a batch takes at most `max_batch` items (the rest go in the next one), and the
callers waiting are the senders already in flight, whom the gateway bounds per connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(self, call: Callable[[Sequence[T]], Awaitable[R]], *, max_batch: int = 256) -> None:
        """`call` takes a batch of items and returns one result for the whole batch (each
        caller gets that same result and picks its own part)."""
        self._call = call
        self._max_batch = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._running = False
        self._task: asyncio.Task | None = None  # held: the loop keeps only a weak reference
        self.batches = 0  # how many calls were made (for tests and metrics)

    async def __call__(self, item: T) -> R:
        if self._running:  # a call is in flight: wait for the next batch
            future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            self._waiting.append((item, future))
            return await future
        # Nothing in flight: call at once, in this caller's own task. A hand-off to another
        # task would cost a turn of the event loop, which under load is the latency itself.
        self._running = True
        self.batches += 1
        try:
            return await self._call([item])
        finally:
            if self._waiting:
                self._task = asyncio.get_running_loop().create_task(self._drain(), name="coalescer")
            else:
                self._running = False

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:self._max_batch], self._waiting[self._max_batch:]
                self.batches += 1
                try:
                    result = await self._call([item for item, _ in batch])
                except BaseException as exc:  # every caller of this batch gets the failure
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for _, future in batch:
                    if not future.done():
                        future.set_result(result)
        finally:
            self._running = False
            if self._waiting:  # only when cancelled mid-way: nobody is left to run them
                waiting, self._waiting = self._waiting, []
                for _, future in waiting:
                    if not future.done():
                        future.set_exception(asyncio.CancelledError())
