"""Shared plumbing of the SQLite adapters: URL parsing, one writer and one reader thread.

sqlite3 blocks, so calls run off the event loop (on a `ThreadLane`: one thread each,
a job at half an executor's cost). Writes go through a single thread that owns the only
write connection: SQLite admits one writer at a time anyway, and a
queue in front of it beats retrying SQLITE_BUSY. Reads use a second connection, which
WAL lets run concurrently with the writer and see every committed transaction.

Two exceptions, both for work that takes less than the hop it would cost: point lookups
(`read_small`, on a third, read-only connection) and small writes (`write(small=True)`, on
the write connection while the writer thread has nothing queued) run on the loop. A small
write goes there only while such writes are measured quick (_placement.py: a WAL checkpoint
on a slow disk moves them back to the thread), and it never waits for another process's
write lock: busy, it goes to the thread, which does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from services.common.errors import BackendError, BackendUnavailable, Conflict, InvalidInput
from services.common.paths import FILE_MODE, ensure_private_dir

from ._lane import ThreadLane
from ._placement import Placement

__all__ = ["SQLiteThreads", "SMALL_WRITE_ROWS", "sqlite_path_from_url", "translate_sqlite_error"]

T = TypeVar("T")

SMALL_WRITE_ROWS = 128  # rows few enough for write(small=True): a store batch under load
_BUSY_TIMEOUT_S = 10.0  # the writer thread waits this long for another process's write lock


def sqlite_path_from_url(url: str) -> Path:
    """`sqlite:////abs/file.db` is absolute, `sqlite:///rel/file.db` relative (SQLAlchemy's rule)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.netloc or len(parts.path) < 2:
        raise InvalidInput("expected sqlite:////absolute/path.db or sqlite:///relative/path.db", url=url)
    return Path(parts.path[1:])


def translate_sqlite_error(exc: BaseException, what: str) -> Exception:
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(f"{what}: {exc}")
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
        return BackendUnavailable(f"{what}: {exc}")
    if isinstance(exc, sqlite3.Error):
        # The extended code (SQLITE_IOERR_SHORT_READ, not just "disk I/O error") is what
        # tells an operator which file and which failure.
        name = getattr(exc, "sqlite_errorname", None)
        return BackendError(f"{what}: {exc} ({name})" if name else f"{what}: {exc}")
    if isinstance(exc, OSError):
        return BackendError(f"{what}: {exc}")
    return exc  # type: ignore[return-value]


def _connect(path: Path) -> sqlite3.Connection:
    ensure_private_dir(path.parent)
    _make_private(path)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly
    # what the adapter says it is.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_S)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def _make_private(path: Path) -> None:
    """Create the database file 0600 (SQLite gives its -wal and -shm files the database's
    mode, so the whole database stays private whatever the umask), or tighten it.

    Never open and close a descriptor of a database file that may be open already: POSIX
    drops every lock a process holds on a file when *any* descriptor of it is closed, so
    SQLite's connections in this process would lose their locks without knowing, and a
    second process closing its connection would take this one's WAL for abandoned,
    checkpoint it and remove it (this process then reads past the end of the file:
    SQLITE_IOERR_SHORT_READ). Only a file that did not exist gets a descriptor here."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        try:
            if path.stat().st_mode & 0o777 != FILE_MODE:
                os.chmod(path, FILE_MODE)  # a file an older version left 0644
        except PermissionError:
            pass  # another user's file we may still use: not ours to change


def _connect_inline(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0.0)
    conn.execute("PRAGMA query_only=ON")  # reads only: nothing here may take the write lock
    return conn


class SQLiteThreads:
    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self._name = name
        self._writer: ThreadLane | None = None
        self._reader: ThreadLane | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._inline_conn: sqlite3.Connection | None = None  # read_small's, on the loop thread
        self.write_place = Placement(f"{name}_write")  # small writes: on the loop while they are quick

    @property
    def started(self) -> bool:
        return self._writer is not None

    async def start(self) -> None:
        if self._writer is not None:
            return
        self._writer = ThreadLane(f"{self._name}-writer")
        self._reader = ThreadLane(f"{self._name}-reader")
        path = self.path
        try:
            self._write_conn = await self._writer.run(lambda: _connect(path))
            self._read_conn = await self._reader.run(lambda: _connect(path))
            self._inline_conn = await self._reader.run(lambda: _connect_inline(path))
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise BackendUnavailable(f"cannot open {self.path}: {exc}") from exc

    async def close(self) -> None:
        inline, self._inline_conn = self._inline_conn, None
        if inline is not None:
            inline.close()
        for lane, attr in ((self._writer, "_write_conn"), (self._reader, "_read_conn")):
            conn = getattr(self, attr)
            setattr(self, attr, None)
            if lane is not None and conn is not None:
                await lane.run(conn.close)
            if lane is not None:
                await lane.close()
        self._writer = self._reader = None

    async def write(self, fn: Callable[[sqlite3.Connection], T], what: str, *, small: bool = False) -> T:
        """Run fn in one IMMEDIATE transaction on the writer thread. `small`: a bounded
        write (a store batch's rows), which runs on the loop instead while such writes are
        quick and the writer thread is idle (the module doc)."""
        if small:
            lane, conn = self._writer, self._write_conn
            if lane is not None and conn is not None and not lane.closed and lane.idle and self.write_place.choose():
                done, result = self._write_inline(conn, fn, what)
                if done:
                    return result
            return await self._run(self._writer, "_write_conn", lambda conn: self._timed_transaction(conn, fn), what)
        return await self._run(self._writer, "_write_conn", lambda conn: _transaction(conn, fn), what)

    def _write_inline(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T],
                      what: str) -> tuple[bool, T | None]:
        """(True, result), or (False, None) when another process holds the write lock."""
        started = time.perf_counter()
        conn.execute("PRAGMA busy_timeout = 0")  # the loop never waits for a lock
        try:
            return True, _transaction(conn, fn)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return False, None  # rolled back: the writer thread runs it, waiting for the lock
            raise translate_sqlite_error(exc, what) from exc
        except (sqlite3.Error, OSError) as exc:
            raise translate_sqlite_error(exc, what) from exc
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            self.write_place.record(time.perf_counter() - started, inline=True)

    def _timed_transaction(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
        started = time.perf_counter()
        try:
            return _transaction(conn, fn)
        finally:
            self.write_place.record(time.perf_counter() - started, inline=False)

    async def write_script(self, fn: Callable[[sqlite3.Connection], T], what: str) -> T:
        """Run fn on the writer thread with no transaction around it (fn manages its own)."""
        return await self._run(self._writer, "_write_conn", fn, what)

    async def read(self, fn: Callable[[sqlite3.Connection], T], what: str) -> T:
        return await self._run(self._reader, "_read_conn", fn, what)

    async def read_small(self, fn: Callable[[sqlite3.Connection], T], what: str) -> T:
        """A read of a few indexed rows, run on the calling (event-loop) thread.

        In WAL mode a reader takes no lock a writer holds, and a handful of index searches
        in the page cache take tens of microseconds: less than the thread hop they would
        otherwise cost, whose completion waits for the GIL from a busy loop (milliseconds
        at a thousand sends a second, per hop). The connection gives up on a busy database
        at once (busy_timeout 0) and the read then goes to the reader thread, so the loop
        never waits on a lock. Only for bounded point lookups: scans stay in read()."""
        conn = self._inline_conn
        if conn is None:
            return await self.read(fn, what)
        try:
            return fn(conn)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return await self.read(fn, what)
            raise translate_sqlite_error(exc, what) from exc
        except (sqlite3.Error, OSError) as exc:
            raise translate_sqlite_error(exc, what) from exc

    async def _run(self, lane: ThreadLane | None, attr: str, fn, what: str):
        if lane is None or lane.closed:
            raise BackendUnavailable(f"{self._name} is not started or already closed")
        try:
            return await lane.run(lambda: fn(getattr(self, attr)))
        except (sqlite3.Error, OSError) as exc:
            raise translate_sqlite_error(exc, what) from exc


def _transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
