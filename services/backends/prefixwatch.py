"""Follow one ConfigStore prefix into local state: list it once, then apply its watch.

Every mirror of the store in Flare (the topology a split instance routes by, the token
revocations every checker holds, the control plane's desired documents) is the same loop:

    watch = PrefixWatch(store, PREFIX, relist=load, apply=on_event, what="topology")
    await watch.start()      # relist() once, so the mirror is right from the first read
    ...
    await watch.stop()

`relist()` lists the prefix into the mirror and returns the revision it listed at;
`apply(event)` applies one watch event. A watch can be lost (the store dropped it, or its
start revision was compacted while this process was away): the mirror is then repaired
level-triggered, by listing again, whatever the missed events were, and the watch resumes
after the new list's revision. A store that keeps failing is retried with a growing delay,
never in a busy loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from services.common.errors import BackendError, CompactedError, FlareError

from .configstore import ConfigStore, WatchEvent

__all__ = ["PrefixWatch"]

log = logging.getLogger("flare.prefixwatch")

FIRST_DELAY_S = 0.2
MAX_DELAY_S = 5.0


class PrefixWatch:
    def __init__(self, store: ConfigStore, prefix: str, *, relist: Callable[[], Awaitable[int]],
                 apply: Callable[[WatchEvent], Awaitable[None]], what: str,
                 logger: logging.Logger = log) -> None:
        self._store = store
        self._prefix = prefix
        self._relist = relist
        self._apply = apply
        self._what = what  # names the mirror in its log lines and its task
        self._log = logger
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """List once (errors reach the caller), then follow the watch in a task."""
        revision = await self._relist()
        self._task = asyncio.create_task(self.follow(revision), name=f"{self._what}-watch")

    async def stop(self) -> None:
        if self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await task
            except Exception:  # the watch died earlier; stopping must still succeed
                self._log.exception("%s watch had failed", self._what)

    async def follow(self, revision: int) -> None:
        """Apply every event after `revision`, forever; re-list whenever the watch is lost."""
        delay = FIRST_DELAY_S
        while True:
            try:
                async for event in self._store.watch_prefix(self._prefix, start_revision=revision + 1):
                    revision = event.mod_revision
                    await self._apply(event)
                    delay = FIRST_DELAY_S
            except CompactedError:
                # Not a failure: the store is fine, only the history is gone. List at once.
                self._log.info("%s watch revision compacted; re-listing", self._what)
            except BackendError as exc:
                self._log.warning("%s watch failed (%s); re-listing in %.1fs", self._what, exc, delay)
                delay = await _pause(delay)
            else:
                # The watch ended without an error (the store was closed under us): wait all
                # the same, or a store that keeps ending watches turns this into a busy loop.
                self._log.info("%s watch ended; re-listing in %.1fs", self._what, delay)
                delay = await _pause(delay)
            try:
                revision = await self._relist()
            except FlareError as exc:
                self._log.warning("%s re-list failed (%s); watching on in %.1fs", self._what, exc, delay)
                delay = await _pause(delay)


async def _pause(delay: float) -> float:
    """Sleep `delay`; return the next, longer one."""
    await asyncio.sleep(delay)
    return min(delay * 2, MAX_DELAY_S)
