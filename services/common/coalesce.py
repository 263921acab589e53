"""Many concurrent single-item calls turned into few batch calls, one (or a few) in flight.

A per-message lookup that crosses to a thread (SQLite) or the network (PostgreSQL) costs a
hand-off each: at a thousand sends a second that is a thousand thread hops, each of which
may wait for the GIL's switch interval, queued one behind the other. Here a caller finding
nothing in flight calls at once with its own item; callers arriving while a call runs wait
together for the next one, which starts when it ends. Under light load a batch is one item
and costs no more than the call; under heavy load the batch grows, so the hops per second
stay near 1 / call time.

Bounded: a batch takes at most `max_batch` items (the rest go in the next one), and the
callers waiting are the senders already in flight, whom the gateway bounds per connection.

`Coalescer` gives every caller of a batch the same result (a lookup keyed by item, each
caller picks its own part); `ItemCoalescer` takes one result per item, so each caller gets
its own result or its own exception (the batch RPCs of services.common.grpc_batch).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Coalescer", "ItemCoalescer"]

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """An ItemCoalescer whose `call` answers for the whole batch: every caller of a batch
    gets that same result (a lookup keyed by item, in which each caller finds its part)."""

    def __init__(self, call: Callable[[Sequence[T]], Awaitable[R]], *, max_batch: int = 256) -> None:
        async def whole(items: Sequence[T]) -> list[R]:
            result = await call(items)
            return [result] * len(items)

        self._items: ItemCoalescer[T, R] = ItemCoalescer(whole, max_batch=max_batch)

    @property
    def batches(self) -> int:
        """How many calls were made (for tests and metrics)."""
        return self._items.batches

    def __call__(self, item: T) -> Awaitable[R]:
        return self._items(item)


class ItemCoalescer(Generic[T, R]):
    """Like Coalescer, but `call` answers item by item and each caller gets its own answer.

    `call` takes a batch and returns one entry per item, in order: the item's result, or
    an exception, which is raised to that item's caller alone. If `call` itself raises,
    every caller of that batch gets the exception.

    Bounds: at most `max_batch` items and (when `size` is given) about `max_bytes` per
    batch (an item larger than that goes alone), at most `max_in_flight` batches at once.
    With more than one in flight, a caller who finds a free slot and nobody waiting still
    calls at once, alone; the waiting callers are taken when a slot frees, all together.
    """

    def __init__(self, call: Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]], *,
                 max_batch: int = 256, max_bytes: int | None = None, size: Callable[[T], int] | None = None,
                 max_in_flight: int = 1, on_batch: Callable[[int], None] | None = None) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        if (max_bytes is None) != (size is None):
            raise ValueError("max_bytes and size go together")
        self._call = call
        self._max_batch = max_batch
        self._max_bytes = max_bytes
        self._size = size
        self._max_in_flight = max_in_flight
        self._on_batch = on_batch  # told each batch's size (a metric)
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = 0
        self._starting = False  # a batch task is scheduled and has not taken its batch yet
        self._tasks: set[asyncio.Task] = set()  # held: the loop keeps only weak references
        self.batches = 0  # how many calls were made (for tests)

    async def __call__(self, item: T) -> R:
        if self._in_flight < self._max_in_flight and not self._waiting:
            # Call at once, in this caller's own task: a hand-off to another task would cost
            # a turn of the event loop, which under load is the latency itself.
            self._in_flight += 1
            self._count(1)
            try:
                results = await self._call([item])
            finally:
                self._in_flight -= 1
                self._launch()
            _check_length(results, 1)
            result = results[0]
            if isinstance(result, BaseException):
                raise result
            return result
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._launch()
        return await future

    def _count(self, size: int) -> None:
        self.batches += 1
        if self._on_batch is not None:
            self._on_batch(size)

    def _launch(self) -> None:
        # One batch task at a time is scheduled but not yet started, and it takes its batch
        # when it starts, not now: callers arriving in the same turn of the loop (a server
        # running a received batch's items) join it.
        if self._waiting and not self._starting and self._in_flight < self._max_in_flight:
            self._in_flight += 1
            self._starting = True
            task = asyncio.get_running_loop().create_task(self._run(), name="item-coalescer")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        used = 0
        taken = 0
        for item, future in self._waiting:
            if len(batch) == self._max_batch:
                break
            if future.done():  # its caller was cancelled while waiting: not sent at all
                taken += 1
                continue
            if self._size is not None and self._max_bytes is not None:
                item_bytes = self._size(item)
                if batch and used + item_bytes > self._max_bytes:
                    break
                used += item_bytes
            batch.append((item, future))
            taken += 1
        del self._waiting[:taken]
        return batch

    async def _run(self) -> None:
        self._starting = False
        try:
            batch = self._take()
            self._launch()  # more waiting than one batch takes, and a slot free
            if not batch:
                return
            self._count(len(batch))
            try:
                results = await self._call([item for item, _ in batch])
                _check_length(results, len(batch))
            except BaseException as exc:  # every caller of this batch gets the failure
                for _, future in batch:
                    if future.done():
                        continue
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            for (_, future), result in zip(batch, results):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            self._launch()


def _check_length(results: Sequence[object], expected: int) -> None:
    if len(results) != expected:
        raise RuntimeError(f"a batch of {expected} items came back with {len(results)} results")
