"""Schema history and migration lock of the PostgreSQL MessageDB.

The lock is a session advisory lock taken with `pg_try_advisory_lock` and retried with
backoff, as Atlas does, never a blocking `pg_advisory_lock`: a blocked waiter holds a
snapshot that `CREATE INDEX CONCURRENTLY` in the holder would wait on forever (flyway#1654).
Everything a migration run does happens on the connection that holds the lock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


from ..history import HISTORY_TABLE, HistoryKind, HistoryRow, MigrationFailed, MigrationLocked
from ..migrator import DEFAULT_LOCK_TIMEOUT_S, Migrator
from ._errors import translated
from ._rows import to_ms
from ._statements import split_statements
from .partitions import MIGRATION_LOCK, ensure_partitions

__all__ = ["PostgresSchema"]

_CREATE_HISTORY = f"""
CREATE TABLE IF NOT EXISTS {HISTORY_TABLE} (
    rank         bigserial   PRIMARY KEY,
    version      integer     NOT NULL,
    description  text        NOT NULL,
    kind         text        NOT NULL,  -- migrate | undo | baseline
    checksum     text        NOT NULL,  -- sha256 of the file that ran ('' when adopted)
    applied_by   text        NOT NULL,
    applied_at   timestamptz NOT NULL DEFAULT now(),
    execution_ms integer     NOT NULL,
    success      boolean     NOT NULL,
    error        text        NOT NULL DEFAULT ''
)"""
_COLUMNS = "rank, version, description, kind, checksum, applied_by, applied_at, execution_ms, success, error"
_INSERT = (f"INSERT INTO {HISTORY_TABLE} (version, description, kind, checksum, applied_by, execution_ms, success, "
           f"error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}")
_LEGACY = "schema_migrations"  # name-only bookkeeping of earlier releases, adopted on first write
_LEGACY_ROWS = f"""
SELECT row_number() OVER (ORDER BY name) AS rank, split_part(name, '_', 1)::integer AS version,
       substr(name, strpos(name, '_') + 1) AS description, 'migrate' AS kind, '' AS checksum,
       'adopted from schema_migrations' AS applied_by, applied_at, 0 AS execution_ms, true AS success, '' AS error
FROM {_LEGACY}"""


def _to_row(row) -> HistoryRow:
    return HistoryRow(rank=row["rank"], version=row["version"], description=row["description"], kind=row["kind"],
                      checksum=row["checksum"], applied_by=row["applied_by"], applied_at_ms=to_ms(row["applied_at"]),
                      execution_ms=row["execution_ms"], success=row["success"], error=row["error"])


async def _ensure_history(conn: asyncpg.Connection) -> None:
    if await conn.fetchval("SELECT to_regclass($1)", HISTORY_TABLE) is not None:
        return
    async with conn.transaction():
        await conn.execute(_CREATE_HISTORY)
        if await conn.fetchval("SELECT to_regclass($1)", _LEGACY) is not None:
            await conn.execute(
                f"INSERT INTO {HISTORY_TABLE} (version, description, kind, checksum, applied_by, applied_at, "
                f"execution_ms, success, error) SELECT version, description, kind, checksum, applied_by, applied_at, "
                f"execution_ms, success, error FROM ({_LEGACY_ROWS}) legacy ORDER BY rank")


class PostgresSchema:
    dialect = "postgres"
    _pool: asyncpg.Pool | None
    _lock_conn: asyncpg.Connection | None = None

    # -- SchemaStore (what services call) ---------------------------------------------------
    async def migrate(self) -> list[str]:
        rows = await Migrator(self).up(lock_timeout_s=DEFAULT_LOCK_TIMEOUT_S)
        return [f"V{r.version:03d}__{r.description}" for r in rows]

    async def applied_migrations(self) -> list[str]:
        migrator = Migrator(self)
        return [migrator.name_of(row.version) for row in (await migrator.status()).applied]

    # -- SchemaHistory (what the migrator drives) -------------------------------------------
    async def read_history(self) -> list[HistoryRow]:
        async with self._conn("read schema history") as conn:
            if await conn.fetchval("SELECT to_regclass($1)", HISTORY_TABLE) is not None:
                rows = await conn.fetch(f"SELECT {_COLUMNS} FROM {HISTORY_TABLE} ORDER BY rank")
            elif await conn.fetchval("SELECT to_regclass($1)", _LEGACY) is not None:
                rows = await conn.fetch(_LEGACY_ROWS + " ORDER BY rank")
            else:
                rows = []
        return [_to_row(row) for row in rows]

    @asynccontextmanager
    async def migration_lock(self, *, timeout_s: float) -> AsyncIterator[None]:
        async with self._conn("take the migration lock") as conn:
            deadline, delay = time.monotonic() + timeout_s, 0.05
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK):
                if time.monotonic() >= deadline:
                    raise MigrationLocked(
                        f"another migration holds the PostgreSQL advisory lock {MIGRATION_LOCK:#x}; "
                        f"gave up after {timeout_s:g}s", lock=MIGRATION_LOCK)
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 1.0)
            self._lock_conn = conn
            try:
                yield
            finally:
                self._lock_conn = None
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    @asynccontextmanager
    async def _migration_conn(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        if self._lock_conn is not None:
            with translated(what):
                yield self._lock_conn
        else:
            async with self._conn(what) as conn:
                yield conn

    async def run_migration(self, sql: str, *, transactional: bool, version: int, description: str,
                            kind: HistoryKind, checksum: str, applied_by: str) -> HistoryRow:
        async with self._migration_conn(f"run migration V{version:03d}") as conn:
            await _ensure_history(conn)
            started = time.monotonic()
            try:
                if transactional:
                    async with conn.transaction():
                        await conn.execute(sql)
                        row = await conn.fetchrow(_INSERT, version, description, kind, checksum, applied_by,
                                                  int((time.monotonic() - started) * 1000), True, "")
                    return _to_row(row)
                # One statement at a time: a multi-statement query is an implicit transaction,
                # which CREATE INDEX CONCURRENTLY refuses.
                for statement in split_statements(sql):
                    await conn.execute(statement)
                row = await conn.fetchrow(_INSERT, version, description, kind, checksum, applied_by,
                                          int((time.monotonic() - started) * 1000), True, "")
                return _to_row(row)
            except asyncpg.exceptions.PostgresError as exc:
                error = f"{type(exc).__name__}: {exc}"
                await conn.fetchrow(_INSERT, version, description, kind, checksum, applied_by,
                                    int((time.monotonic() - started) * 1000), False, error)
                untouched = "the schema is as it was before it" if transactional else \
                    "it ran outside a transaction: statements before the failing one stay applied"
                raise MigrationFailed(f"V{version:03d}__{description} ({kind}) failed: {error}; {untouched}",
                                      version=version, error=error) from exc

    async def record(self, *, version: int, description: str, kind: HistoryKind, checksum: str,
                     applied_by: str) -> HistoryRow:
        async with self._migration_conn("record schema history") as conn:
            await _ensure_history(conn)
            return _to_row(await conn.fetchrow(_INSERT, version, description, kind, checksum, applied_by, 0, True, ""))

    async def after_migrate(self) -> None:
        async with self._migration_conn("maintain partitions") as conn:
            await ensure_partitions(conn)

    async def table_has_rows(self, table: str) -> bool | None:
        """None when there is no such table (it is made by a migration still pending)."""
        async with self._conn("look at a table") as conn:
            if await conn.fetchval("SELECT to_regclass($1)", table) is None:
                return None
            quoted = '"' + table.replace('"', '""') + '"'
            return await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {quoted})")

    async def _maintain_partitions(self) -> None:
        """On start: keep the month partitions ahead of the clock, unless another process holds
        the lock (it is migrating or doing the same maintenance right now)."""
        async with self._conn("maintain partitions") as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK):
                return
            try:
                await ensure_partitions(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


