"""A database another process reads while Flare has it open (flarectl check, a test, an
operator's sqlite3 shell) keeps everything Flare committed.

POSIX drops all of a process's locks on a file when any descriptor of it is closed. Flare
used to open and close one to fix the file's mode before each connection, so its own
connections lost their locks; the next process to close a connection then took the WAL
for abandoned, checkpointed it and deleted it under Flare's feet. Reads then failed with
SQLITE_IOERR_SHORT_READ, and writes went to an unlinked WAL: lost on restart.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys

from services.backends.embedded._sqlite import SQLiteThreads

_READ_AND_CLOSE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
print(conn.execute("SELECT count(*) FROM t").fetchone()[0])
conn.close()
"""


def _other_process_count(path) -> int:
    out = subprocess.run([sys.executable, "-c", _READ_AND_CLOSE, str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout)


async def test_another_process_closing_its_connection_leaves_our_wal_alone(tmp_path) -> None:
    path = tmp_path / "m.db"
    first = sqlite3.connect(path)  # a database from an earlier run: the case that lost locks
    first.execute("PRAGMA journal_mode=WAL")
    first.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
    first.close()
    db = SQLiteThreads(path, "test")
    await db.start()
    try:
        for k in range(50):
            await db.write(lambda c, k=k: c.execute("INSERT INTO t VALUES (?)", (k,)), "insert")
        assert _other_process_count(path) == 50
        # Still ours: the other process saw our shared lock and did not remove the WAL.
        assert (tmp_path / "m.db-wal").exists()
        for k in range(50, 80):
            await db.write(lambda c, k=k: c.execute("INSERT INTO t VALUES (?)", (k,)), "insert")
        count = lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]  # noqa: E731
        assert await db.read_small(count, "count") == 80
        assert await db.read(count, "count") == 80
        assert _other_process_count(path) == 80
    finally:
        await db.close()
    assert _other_process_count(path) == 80  # and after a clean close, on disk


async def test_the_database_file_is_private_and_an_old_wide_one_is_tightened(tmp_path) -> None:
    fresh, old = tmp_path / "fresh.db", tmp_path / "old.db"
    old.touch()
    os.chmod(old, 0o644)
    for path in (fresh, old):
        db = SQLiteThreads(path, "test")
        await db.start()
        await db.write(lambda c: c.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER)"), "create")
        for name in (path.name, path.name + "-wal", path.name + "-shm"):
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
        await db.close()
