"""SQLiteThreads.write(small=True): on the loop while quick and the writer thread is idle,
never waiting there for another process's write lock, rolled back whole on failure."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from services.backends.embedded._sqlite import SQLiteThreads
from services.common.errors import Conflict


@pytest.fixture
async def db(tmp_path):
    threads = SQLiteThreads(tmp_path / "t.db", "test")
    await threads.start()
    await threads.write(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"), "create")
    yield threads
    await threads.close()


def _insert(k: int, where: list[str]):
    def run(conn: sqlite3.Connection) -> None:
        where.append(threading.current_thread().name)
        conn.execute("INSERT INTO t VALUES (?, ?)", (k, f"v{k}"))
    return run


def _rows(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT k, v FROM t ORDER BY k").fetchall()


async def test_small_writes_move_to_the_loop_once_measured_quick_and_commit(db) -> None:
    where: list[str] = []
    for k in range(5):
        await db.write(_insert(k, where), "insert", small=True)
    assert where[0].startswith("test-writer")  # nothing measured yet: the thread seeds the estimate
    assert where[-1] == threading.current_thread().name  # then the loop
    assert await db.read(_rows, "rows") == [(k, f"v{k}") for k in range(5)]  # committed, seen by the reader


async def test_a_write_that_is_not_small_stays_on_the_writer_thread(db) -> None:
    where: list[str] = []
    for k in range(3):
        await db.write(_insert(k, where), "insert")
    assert all(name.startswith("test-writer") for name in where)


async def test_a_failed_small_write_is_rolled_back_whole(db) -> None:
    where: list[str] = []
    await db.write(_insert(1, where), "insert", small=True)
    await db.write(_insert(2, where), "insert", small=True)

    def two_then_conflict(conn: sqlite3.Connection) -> None:
        where.append(threading.current_thread().name)
        conn.execute("INSERT INTO t VALUES (3, 'v3')")
        conn.execute("INSERT INTO t VALUES (1, 'again')")  # the primary key: IntegrityError

    with pytest.raises(Conflict):
        await db.write(two_then_conflict, "insert", small=True)
    assert where[-1] == threading.current_thread().name  # it did run on the loop
    assert await db.read(_rows, "rows") == [(1, "v1"), (2, "v2")]  # row 3 went with the transaction


async def test_another_process_holding_the_write_lock_never_stalls_the_loop(db, tmp_path) -> None:
    where: list[str] = []
    for k in range(3):
        await db.write(_insert(k, where), "insert", small=True)
    assert where[-1] == threading.current_thread().name
    other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)  # another writer
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    write = asyncio.create_task(db.write(_insert(10, where), "insert", small=True))
    await asyncio.sleep(0.3)
    assert not write.done() and ticks >= 10  # waiting for the lock, and the loop ran meanwhile
    other.execute("COMMIT")
    await asyncio.wait_for(write, 5)
    ticker.cancel()
    other.close()
    assert where[-2] == threading.current_thread().name  # tried on the loop, found it busy...
    assert where[-1].startswith("test-writer")  # ...and the thread waited for the lock
    assert (10, "v10") in await db.read(_rows, "rows")


async def test_a_small_write_waits_its_turn_behind_queued_thread_writes(db) -> None:
    # While the writer thread has work, the connection is the thread's: a small write then
    # goes behind it in order instead of running on the loop at the same time.
    where: list[str] = []
    await db.write(_insert(0, where), "insert", small=True)
    await db.write(_insert(1, where), "insert", small=True)
    gate = threading.Event()

    def slow(conn: sqlite3.Connection) -> None:
        gate.wait(5)
        conn.execute("INSERT INTO t VALUES (2, 'v2')")

    first = asyncio.create_task(db.write(slow, "slow"))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(db.write(_insert(3, where), "insert", small=True))
    await asyncio.sleep(0.05)
    assert not second.done()
    gate.set()
    await asyncio.gather(first, second)
    assert where[-1].startswith("test-writer")
    assert await db.read(_rows, "rows") == [(0, "v0"), (1, "v1"), (2, "v2"), (3, "v3")]
