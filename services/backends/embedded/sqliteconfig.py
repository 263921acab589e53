"""`sqlite:////abs/path.db` — the ConfigStore port with etcd's semantics on one SQLite file.

Tables: `kv` (the current keys), `history` (one row per key change, tagged with the store
revision that made it; a lease revoke deletes several keys in ONE revision, as in etcd),
`leases` (wall-clock expiry, since other processes share the file) and `meta` (the store
revision and the compaction point).

Watchers pull from `history` rather than being fed by writers: each one reads the next
changes under its prefix from its own position, which makes replay from a past revision,
live events and writes by OTHER processes the same code path. They sleep on a broadcast
event that local commits fire immediately and a 100 ms poller fires when another process
moved the revision. The same poller expires leases; several processes may race to expire
one, which is harmless because the revoke runs in one IMMEDIATE transaction.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator

from services.backends.configstore import KeyValue, WatchEvent, WatchEventType
from services.common.errors import CompactedError, Conflict, InvalidInput, NotFound

from ._sqlite import SQLiteThreads, sqlite_path_from_url

__all__ = ["SQLiteConfigStore"]

_log = logging.getLogger(__name__)

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 1), ('compact_revision', 0);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, create_revision INTEGER NOT NULL,
    mod_revision INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_lease ON kv (lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS history (
    revision INTEGER NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (revision, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY AUTOINCREMENT, ttl REAL NOT NULL, expires_at REAL NOT NULL);
COMMIT;
"""
_KV_COLUMNS = "key, value, create_revision, mod_revision, version, lease"
_WATCH_PAGE = 500


def _prefix_range(prefix: str) -> tuple[str, str | None]:
    """[prefix, end) in SQLite's BINARY (code point) order; end None means unbounded."""
    if not prefix:
        return "", None
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _range_sql(column: str, end: str | None) -> str:
    return f"{column} >= ?" + ("" if end is None else f" AND {column} < ?")


def _range_args(start: str, end: str | None) -> tuple:
    return (start,) if end is None else (start, end)


def _revision(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()[0]


def _bump(conn: sqlite3.Connection) -> int:
    revision = _revision(conn) + 1
    conn.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (revision,))
    return revision


def _revoke_in_tx(conn: sqlite3.Connection, lease_id: int) -> bool:
    """Delete the lease and its keys in one revision; True if any key went."""
    conn.execute("DELETE FROM leases WHERE id = ?", (lease_id,))
    keys = [key for (key,) in conn.execute("SELECT key FROM kv WHERE lease = ? ORDER BY key", (lease_id,))]
    if not keys:
        return False
    revision = _bump(conn)
    conn.executemany("DELETE FROM kv WHERE key = ?", [(k,) for k in keys])
    conn.executemany(
        "INSERT INTO history (revision, key, type, value) VALUES (?, ?, 'delete', x'')", [(revision, k) for k in keys]
    )
    return True


class SQLiteConfigStore:
    def __init__(self, path, *, poll_interval_s: float = 0.1) -> None:
        self._db = SQLiteThreads(path, "configstore")
        self._poll_interval_s = poll_interval_s
        self._changed = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def from_url(cls, url: str) -> SQLiteConfigStore:
        return cls(sqlite_path_from_url(url))

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        if self._poller is not None:
            return
        self._closed = False
        await self._db.start()
        await self._db.write_script(lambda conn: conn.executescript(_SCHEMA), "create schema")
        self._poller = asyncio.create_task(self._poll_forever(), name="configstore-poll")

    async def close(self) -> None:
        if self._poller is None:
            return
        self._closed = True
        self._poller.cancel()
        try:
            await self._poller
        except asyncio.CancelledError:
            pass
        self._poller = None
        self._notify()  # watchers see _closed and end
        await self._db.close()

    def _notify(self) -> None:
        # Broadcast: waiters hold the old event, which fires; later waiters get a fresh one.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _poll_forever(self) -> None:
        seen = -1
        while True:
            try:
                revision, expired = await self._db.read(
                    lambda conn: (
                        _revision(conn),
                        [i for (i,) in conn.execute("SELECT id FROM leases WHERE expires_at <= ?", (time.time(),))],
                    ),
                    "poll",
                )
                if expired:
                    await self._expire(expired)
                elif revision != seen:
                    seen = revision
                    self._notify()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep polling: a busy file now is usually free next time
                _log.exception("config store poll failed")
            await asyncio.sleep(self._poll_interval_s)

    async def _expire(self, lease_ids: list[int]) -> None:
        def run(conn: sqlite3.Connection) -> bool:
            changed = False
            for lease_id in lease_ids:
                # Re-check inside the transaction: a keepalive may have won the race.
                row = conn.execute("SELECT expires_at FROM leases WHERE id = ?", (lease_id,)).fetchone()
                if row is not None and row[0] <= time.time():
                    changed |= _revoke_in_tx(conn, lease_id)
            return changed

        await self._write(run, "expire leases")

    async def _write(self, fn, what: str):
        result = await self._db.write(fn, what)
        self._notify()
        return result

    # -- reads -----------------------------------------------------------------------
    async def get(self, key: str) -> KeyValue | None:
        row = await self._db.read(
            lambda conn: conn.execute(f"SELECT {_KV_COLUMNS} FROM kv WHERE key = ?", (key,)).fetchone(), "get"
        )
        return None if row is None else KeyValue(*row)

    async def get_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        start, end = _prefix_range(prefix)

        def run(conn: sqlite3.Connection) -> tuple[list[KeyValue], int]:
            conn.execute("BEGIN")  # one snapshot for the rows and the revision
            try:
                rows = conn.execute(
                    f"SELECT {_KV_COLUMNS} FROM kv WHERE {_range_sql('key', end)} ORDER BY key", _range_args(start, end)
                ).fetchall()
                return [KeyValue(*row) for row in rows], _revision(conn)
            finally:
                conn.execute("COMMIT")

        return await self._db.read(run, "get_prefix")

    async def current_revision(self) -> int:
        return await self._db.read(_revision, "current_revision")

    # -- writes ----------------------------------------------------------------------
    def _put_in_tx(self, conn: sqlite3.Connection, key: str, value: bytes, lease: int) -> int:
        if lease and conn.execute("SELECT 1 FROM leases WHERE id = ?", (lease,)).fetchone() is None:
            raise NotFound(f"no lease {lease}", lease=lease)
        revision = _bump(conn)
        conn.execute(
            f"INSERT INTO kv ({_KV_COLUMNS}) VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (key) DO UPDATE SET "
            "value = excluded.value, mod_revision = excluded.mod_revision, version = version + 1, lease = excluded.lease",
            (key, value, revision, revision, lease),
        )
        conn.execute("INSERT INTO history (revision, key, type, value) VALUES (?, ?, 'put', ?)", (revision, key, value))
        return revision

    @staticmethod
    def _check(key: str, value: bytes | None = None) -> None:
        if not isinstance(key, str) or not key:
            raise InvalidInput("config keys are non-empty strings", key=key)
        if value is not None and not isinstance(value, (bytes, bytearray)):
            raise InvalidInput("config values are bytes", key=key)

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        self._check(key, value)
        return await self._write(lambda conn: self._put_in_tx(conn, key, bytes(value), lease), "put")

    async def delete(self, key: str) -> bool:
        self._check(key)

        def run(conn: sqlite3.Connection) -> bool:
            if conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount == 0:
                return False  # as in etcd, deleting nothing is not a revision
            revision = _bump(conn)
            conn.execute("INSERT INTO history (revision, key, type, value) VALUES (?, ?, 'delete', x'')", (revision, key))
            return True

        return await self._write(run, "delete")

    async def compare_and_swap(self, key: str, value: bytes, *, expected_mod_revision: int, lease: int = 0) -> int:
        self._check(key, value)

        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT mod_revision FROM kv WHERE key = ?", (key,)).fetchone()
            actual = 0 if row is None else row[0]
            if actual != expected_mod_revision:
                raise Conflict(
                    f"{key!r} is at mod_revision {actual}, not {expected_mod_revision}",
                    key=key, expected=expected_mod_revision, actual=actual,
                )
            return self._put_in_tx(conn, key, bytes(value), lease)

        return await self._write(run, "compare_and_swap")

    async def compact(self, revision: int) -> None:
        def run(conn: sqlite3.Connection) -> None:
            current = _revision(conn)
            if revision > current:
                raise InvalidInput(f"cannot compact to future revision {revision} (current {current})")
            compacted = conn.execute("SELECT value FROM meta WHERE name = 'compact_revision'").fetchone()[0]
            if revision <= compacted:
                return
            conn.execute("DELETE FROM history WHERE revision < ?", (revision,))
            conn.execute("UPDATE meta SET value = ? WHERE name = 'compact_revision'", (revision,))

        await self._db.write(run, "compact")
        self._notify()  # lagging watchers must find out they fell behind the compaction

    # -- watch -----------------------------------------------------------------------
    def watch_prefix(self, prefix: str, *, start_revision: int | None = None) -> AsyncIterator[WatchEvent]:
        return self._watch(prefix, start_revision)

    async def _watch(self, prefix: str, start_revision: int | None) -> AsyncIterator[WatchEvent]:
        start, end = _prefix_range(prefix)
        position = (await self.current_revision()) + 1 if start_revision is None else max(1, start_revision)

        def fetch(conn: sqlite3.Connection) -> list[tuple]:
            conn.execute("BEGIN")
            try:
                compacted = conn.execute("SELECT value FROM meta WHERE name = 'compact_revision'").fetchone()[0]
                if position < compacted:
                    raise CompactedError(
                        f"revision {position} was compacted (compact revision {compacted})", compact_revision=compacted
                    )
                select = f"SELECT revision, key, type, value FROM history WHERE {_range_sql('key', end)} AND "
                rows = conn.execute(
                    select + "revision >= ? ORDER BY revision, key LIMIT ?",
                    (*_range_args(start, end), position, _WATCH_PAGE),
                ).fetchall()
                if len(rows) == _WATCH_PAGE:
                    # Never split one revision (a lease revoke) across pages: finish the last one.
                    last = rows[-1][0]
                    rows = [r for r in rows if r[0] < last] + conn.execute(
                        select + "revision = ? ORDER BY key", (*_range_args(start, end), last)
                    ).fetchall()
                return rows
            finally:
                conn.execute("COMMIT")

        while not self._closed:
            changed = self._changed  # taken before the read, so a commit during it still wakes us
            rows = await self._db.read(fetch, "watch")
            if not rows:
                await changed.wait()
                continue
            for revision, key, kind, value in rows:
                yield WatchEvent(
                    WatchEventType.PUT if kind == "put" else WatchEventType.DELETE, key, bytes(value), revision
                )
            position = rows[-1][0] + 1

    # -- leases ----------------------------------------------------------------------
    async def lease_grant(self, ttl_s: int) -> int:
        if ttl_s <= 0:
            raise InvalidInput("lease TTL must be positive", ttl_s=ttl_s)
        return await self._db.write(
            lambda conn: conn.execute(
                "INSERT INTO leases (ttl, expires_at) VALUES (?, ?)", (float(ttl_s), time.time() + ttl_s)
            ).lastrowid,
            "lease_grant",
        )

    async def lease_keepalive(self, lease_id: int) -> None:
        def run(conn: sqlite3.Connection) -> bool:
            now = time.time()
            row = conn.execute("SELECT ttl, expires_at FROM leases WHERE id = ?", (lease_id,)).fetchone()
            if row is None or row[1] <= now:
                return False
            conn.execute("UPDATE leases SET expires_at = ? WHERE id = ?", (now + row[0], lease_id))
            return True

        if not await self._db.write(run, "lease_keepalive"):
            raise NotFound(f"lease {lease_id} expired or never existed", lease=lease_id)

    async def lease_revoke(self, lease_id: int) -> None:
        await self._write(lambda conn: _revoke_in_tx(conn, lease_id), "lease_revoke")
