"""Run an archive job and kill -9 it at a named point (a helper process of test_archive_crashes).

    python -m tests.integration.archive_crash_driver DB_URL OBJECTS_URL POINT BEFORE_MS CHUNK_ROWS

POINT: before_upload | after_upload | after_verify | mid_delete, taken on the second chunk so
one chunk is already complete when the process dies. mid_delete dies inside the delete
transaction, after the rows were deleted and before the commit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from services.archive import ArchivePolicy, Archiver
from services.backends.messagedb.postgres import archive as postgres_archive
from services.backends.messagedb.sqlite import archive as sqlite_archive
from services.backends.registry import open_messagedb, open_objectstore

STEPS = {"before_upload": "chunk_pending", "after_upload": "chunk_uploaded", "after_verify": "chunk_verified"}
ON_OCCURRENCE = 2


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _patch_deletes() -> None:
    calls = {"n": 0}
    sqlite_delete, postgres_delete = sqlite_archive.delete_bodies, postgres_archive.delete_bodies

    def sqlite_then_die(conn, msg_ids):
        done = sqlite_delete(conn, msg_ids)
        calls["n"] += 1
        if calls["n"] == ON_OCCURRENCE:
            _die()
        return done

    async def postgres_then_die(conn, msg_ids):
        done = await postgres_delete(conn, msg_ids)
        calls["n"] += 1
        if calls["n"] == ON_OCCURRENCE:
            _die()
        return done

    sqlite_archive.delete_bodies = sqlite_then_die
    postgres_archive.delete_bodies = postgres_then_die
    postgres_archive._BATCH = 1_000_000  # one delete statement per chunk, like SQLite's


async def main(db_url: str, objects_url: str, point: str, before_ms: int, chunk_rows: int) -> None:
    db, objects = open_messagedb(db_url), open_objectstore(objects_url)
    await db.start()
    await objects.start()
    seen = {"n": 0}

    def on_step(step: str, details: dict) -> None:
        if step == STEPS.get(point):
            seen["n"] += 1
            if seen["n"] == ON_OCCURRENCE:
                _die()

    if point == "mid_delete":
        _patch_deletes()
    elif point not in STEPS:
        raise SystemExit(f"unknown point {point}")
    await Archiver(db, objects, ArchivePolicy(chunk_rows=chunk_rows), on_step=on_step).run(before_ms=before_ms)
    raise SystemExit("the run finished without reaching the crash point")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
