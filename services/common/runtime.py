"""Process-wide interpreter settings for a Flare server process."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import sys

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

__all__ = ["tune_interpreter", "freeze_startup_heap", "raise_open_file_limit", "GIL_SWITCH_INTERVAL_S", "HeapTrimmer"]

# The embedded backends finish their I/O in worker threads (SQLite, log writes, fsync), and
# each completion must take the GIL back from a busy event loop. At CPython's default 5 ms
# switch interval every such hop can wait up to 5 ms, and a message crosses several of them;
# at 0.5 ms the measured send->deliver p99 at 100 msg/s fell from ~75 ms to ~40 ms.
GIL_SWITCH_INTERVAL_S = 0.0005


def tune_interpreter() -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    raise_open_file_limit()
    _limit_malloc_arenas()


def freeze_startup_heap() -> int:
    """Once the process has started: move every object alive now (modules, code, config,
    the started services) out of the collector's view; return how many.

    A full (generation 2) collection walks every tracked object, and right after start
    that is mostly code that lives as long as the process: measured at 1,000 msg/s, each
    full collection stopped the event loop for ~68 ms, a few times a minute, which is a
    p99 by itself. After the freeze it walks only what the traffic created (~6.5 ms)."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_M_ARENA_MAX = -8


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own arena (up to 8 per core): message
    values decoded in log-read and SQLite worker threads and freed on the loop fragment them
    all, and RSS creeps up although the heap holds a constant amount. Two arenas keep the
    free space where the next allocation finds it. Must run before worker threads start."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_ARENA_MAX, arenas)


class HeapTrimmer:
    """Every `interval_s`, hand the pages malloc holds free back to the OS (malloc_trim).

    A server whose byte-capped caches churn 2 KiB values frees as much as it allocates,
    but glibc keeps freed pages mapped, so RSS creeps up while the heap stays constant
    (tracemalloc flat, RSS rising: bench/soak_rss.py)."""

    def __init__(self, interval_s: float = 30.0) -> None:
        self._interval_s = interval_s
        self._libc = _libc()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._libc is not None and hasattr(self._libc, "malloc_trim") and self._task is None:
            self._task = asyncio.create_task(self._trim_forever(), name="heap-trimmer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _trim_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            self._libc.malloc_trim(0)  # a few ms on the loop; in a thread it would contend the same locks


def raise_open_file_limit(ceiling: int = 1 << 20) -> int:
    """Lift the soft open-files limit to the hard one (at most `ceiling`); return it.

    Every WebSocket client is a file handle, and distributions still default the soft limit
    to 1024 with a far higher hard limit: a gateway should get what the host allows. (The
    admin port holds a bounded number of handles whatever this is: services.common.adminhttp.)
    """
    if resource is None:
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(ceiling, hard) if hard != resource.RLIM_INFINITY else ceiling
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            pass
    return soft
