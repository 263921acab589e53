"""SQLiteThreads.read_small: on the loop when the database is free, never waiting on a lock."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from services.backends.embedded._sqlite import SQLiteThreads
from services.common.errors import BackendError


@pytest.fixture
async def db(tmp_path):
    threads = SQLiteThreads(tmp_path / "t.db", "test")
    await threads.start()
    await threads.write(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"), "create")
    await threads.write(lambda c: c.execute("INSERT INTO t VALUES (1, 'one')"), "insert")
    yield threads
    await threads.close()


def _value(conn: sqlite3.Connection) -> str:
    return conn.execute("SELECT v FROM t WHERE k = 1").fetchone()[0]


async def test_a_small_read_sees_what_the_writer_committed(db) -> None:
    assert await db.read_small(_value, "value") == "one"
    await db.write(lambda c: c.execute("UPDATE t SET v = 'uno' WHERE k = 1"), "update")
    assert await db.read_small(_value, "value") == "uno"


async def test_a_busy_database_sends_the_read_to_the_reader_thread(db) -> None:
    # What SQLite says when another process holds a lock the read needs (a WAL reset, an
    # exclusive-mode writer): the inline connection has no busy timeout, so it says so at
    # once, and the same read is then done where waiting does not stop the loop.
    threads: list[str] = []

    def read(conn: sqlite3.Connection) -> str:
        threads.append(threading.current_thread().name)
        if len(threads) == 1:
            raise sqlite3.OperationalError("database is locked")
        return _value(conn)

    assert await db.read_small(read, "value") == "one"
    assert threads[0] == threading.current_thread().name  # first try: on the loop
    assert threads[1].startswith("test-reader")  # then the reader thread


async def test_a_small_read_cannot_write(db) -> None:
    with pytest.raises(BackendError):
        await db.read_small(lambda c: c.execute("DELETE FROM t"), "delete")
    assert await db.read(_value, "value") == "one"
