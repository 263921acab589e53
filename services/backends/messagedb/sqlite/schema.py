"""Schema history and migration lock (`<db>.migrate-lock`, see _locks.py) of the SQLite MessageDB."""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from services.backends.embedded._sqlite import SQLiteThreads
from services.common.model import now_ms

from ..history import HISTORY_TABLE, HistoryKind, HistoryRow, MigrationFailed, MigrationLocked
from ..migrator import DEFAULT_LOCK_TIMEOUT_S, Migrator
from ._locks import file_lock

__all__ = ["SQLiteSchema"]

_CREATE_HISTORY = f"""
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
    rank         INTEGER PRIMARY KEY AUTOINCREMENT,
    version      INTEGER NOT NULL,
    description  TEXT    NOT NULL,
    kind         TEXT    NOT NULL,  -- migrate | undo | baseline
    checksum     TEXT    NOT NULL,  -- sha256 of the file that ran ('' when adopted)
    applied_by   TEXT    NOT NULL,
    applied_at   INTEGER NOT NULL,  -- ms since the Unix epoch
    execution_ms INTEGER NOT NULL,
    success      INTEGER NOT NULL,
    error        TEXT    NOT NULL DEFAULT ''
)"""
_COLUMNS = "rank, version, description, kind, checksum, applied_by, applied_at, execution_ms, success, error"
_LEGACY = "schema_migrations"  # name-only bookkeeping of earlier releases, adopted on first write


def _exists(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None


def _legacy_rows(conn: sqlite3.Connection) -> list[tuple]:
    if not _exists(conn, _LEGACY):
        return []
    rows = []
    for name, applied_at in conn.execute(f"SELECT name, applied_at FROM {_LEGACY} ORDER BY name"):
        version, _, description = name.partition("_")
        rows.append((int(version), description, "migrate", "", "adopted from schema_migrations", applied_at, 0, 1, ""))
    return rows


def _ensure_history(conn: sqlite3.Connection) -> None:
    if _exists(conn, HISTORY_TABLE):
        return
    conn.execute(_CREATE_HISTORY)
    conn.executemany(f"INSERT INTO {HISTORY_TABLE} ({_COLUMNS.partition(', ')[2]}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     _legacy_rows(conn))


def _insert(conn: sqlite3.Connection, values: tuple) -> HistoryRow:
    cur = conn.execute(
        f"INSERT INTO {HISTORY_TABLE} ({_COLUMNS.partition(', ')[2]}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
    return _to_row((cur.lastrowid, *values))


def _to_row(row: tuple) -> HistoryRow:
    rank, version, description, kind, checksum, applied_by, applied_at, execution_ms, success, error = row
    return HistoryRow(rank=rank, version=version, description=description, kind=kind, checksum=checksum,
                      applied_by=applied_by, applied_at_ms=applied_at, execution_ms=execution_ms,
                      success=bool(success), error=error)


class SQLiteSchema:
    _db: SQLiteThreads
    dialect = "sqlite"

    # -- SchemaStore (what services call) ---------------------------------------------------
    async def migrate(self) -> list[str]:
        rows = await Migrator(self).up(lock_timeout_s=DEFAULT_LOCK_TIMEOUT_S)
        return [f"V{r.version:03d}__{r.description}" for r in rows]

    async def applied_migrations(self) -> list[str]:
        migrator = Migrator(self)
        return [migrator.name_of(row.version) for row in (await migrator.status()).applied]

    # -- SchemaHistory (what the migrator drives) -------------------------------------------
    async def read_history(self) -> list[HistoryRow]:
        def run(conn: sqlite3.Connection) -> list[HistoryRow]:
            if not _exists(conn, HISTORY_TABLE):
                return [_to_row((rank, *values)) for rank, values in enumerate(_legacy_rows(conn), start=1)]
            return [_to_row(row) for row in conn.execute(f"SELECT {_COLUMNS} FROM {HISTORY_TABLE} ORDER BY rank")]

        return await self._db.read(run, "read schema history")

    def migration_lock(self, *, timeout_s: float) -> AbstractAsyncContextManager[None]:
        return file_lock(Path(f"{self._db.path}.migrate-lock"), timeout_s=timeout_s,
                         locked=lambda why: MigrationLocked(f"a migration is running: {why}"))

    async def run_migration(self, sql: str, *, transactional: bool, version: int, description: str,
                            kind: HistoryKind, checksum: str, applied_by: str) -> HistoryRow:
        def run(conn: sqlite3.Connection) -> HistoryRow:
            _ensure_history(conn)
            started = time.monotonic()
            try:
                # executescript would commit an open transaction first, so BEGIN lives inside the
                # script: the DDL and its history row commit together or not at all.
                conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\n;" if transactional else sql)
                if not conn.in_transaction:
                    conn.execute("BEGIN IMMEDIATE")
                row = _insert(conn, (version, description, kind, checksum, applied_by, now_ms(),
                                     int((time.monotonic() - started) * 1000), 1, ""))
                conn.execute("COMMIT")
                return row
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                failed = _insert(conn, (version, description, kind, checksum, applied_by, now_ms(),
                                        int((time.monotonic() - started) * 1000), 0, str(exc)))
                return failed

        row = await self._db.write_script(run, f"run migration V{version:03d}")
        if not row.success:
            raise MigrationFailed(f"V{version:03d}__{description} ({kind}) failed: {row.error}; "
                                  "the schema is as it was before it", version=version, error=row.error)
        return row

    async def record(self, *, version: int, description: str, kind: HistoryKind, checksum: str,
                     applied_by: str) -> HistoryRow:
        def run(conn: sqlite3.Connection) -> HistoryRow:
            _ensure_history(conn)
            return _insert(conn, (version, description, kind, checksum, applied_by, now_ms(), 0, 1, ""))

        return await self._db.write(run, "record schema history")

    async def after_migrate(self) -> None:
        return None

    async def table_has_rows(self, table: str) -> bool | None:
        """None when there is no such table (it is made by a migration still pending)."""
        def run(conn: sqlite3.Connection) -> bool | None:
            if not _exists(conn, table):
                return None
            return conn.execute(f'SELECT EXISTS (SELECT 1 FROM "{table}")').fetchone()[0] == 1

        return await self._db.read(run, "look at a table")

