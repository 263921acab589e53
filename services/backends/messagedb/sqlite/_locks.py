"""An exclusive `flock` on a file beside the database, tried with backoff: spans a whole job
(a migration run, an archive run), which SQLite's own write lock can only do by holding one
transaction open for all of it."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

__all__ = ["file_lock"]


@asynccontextmanager
async def file_lock(path: Path, *, timeout_s: float, locked: Callable[[str], Exception]) -> AsyncIterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline, delay = time.monotonic() + timeout_s, 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise locked(f"another job holds {path}; gave up after {timeout_s:g}s") from None
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 1.0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
