"""One thread that runs blocking jobs in order for an event loop: the SQLite adapters' writer
and reader.

`loop.run_in_executor(ThreadPoolExecutor(1), fn)` costs about twice this per job (77 against
36 µs of CPU for an empty job, measured on the 2-core VM): the executor takes two locks,
builds a work item and a concurrent future, adjusts its thread count, and asyncio then chains
that future to one of its own. Here a job is a tuple on a C `SimpleQueue`, and its result is
set on the loop's own future by one `call_soon_threadsafe`.

As with the executor, a job whose awaiting task was cancelled before the job started is
skipped; once started it runs to the end (SQLite does not stop mid-statement either).

`idle` is true when every job given has finished (or was skipped) on the thread, so the
loop may use what the lane's jobs use (a SQLite connection) itself until it gives the next
job: it is counted on the loop, and a job is only counted out once the thread is done with it.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["ThreadLane"]

T = TypeVar("T")

_STOP = None


def _settle(lane: ThreadLane, future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    lane._given -= 1
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class ThreadLane:
    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._given = 0  # jobs given and not yet done with on the thread (counted on the loop)
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def idle(self) -> bool:
        """No job is queued or running (read on the loop)."""
        return self._given == 0

    def run(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """fn() on the lane's thread, after every job given before it; await the result."""
        if self._closed:
            raise RuntimeError(f"{self.name} is closed")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._given += 1
        self._jobs.put((fn, loop, future))
        return future

    async def close(self) -> None:
        """Run the jobs already given, then end the thread (idempotent)."""
        if not self._closed:
            self._closed = True
            self._jobs.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    def _work(self) -> None:
        get = self._jobs.get
        while (job := get()) is not _STOP:
            fn, loop, future = job
            result = error = None
            if not future.cancelled():  # cancelled: a benign race, at worst it runs for no one
                try:
                    result = fn()
                except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                    error = exc
            try:
                loop.call_soon_threadsafe(_settle, self, future, result, error)
            except RuntimeError:  # the loop is closed: no one is waiting any more
                pass
            del job, fn, future, result, error  # keep nothing of the job until the next one
