"""`postgresql://user[:password]@host:port/db[?min_size=…&max_size=…]` — the MessageDB port on
PostgreSQL (asyncpg pool). Schema: migrations/postgres/*.sql; time partitions: partitions.py.
Each table's SQL lives in its own module; this class owns the pool and wires them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg

from services.common.errors import BackendUnavailable, InvalidInput

from ._errors import translated
from .archive import PostgresArchive
from .cursors import PostgresCursors
from .events import PostgresEvents
from .integrity import PostgresIntegrity
from .membership import PostgresGroups, PostgresMembership
from .messages import PostgresMessages
from .partitions import storage_mode
from .schema import PostgresSchema

__all__ = ["PostgresMessageDB"]

_ACQUIRE_TIMEOUT_S = 10.0


class PostgresMessageDB(PostgresSchema, PostgresMessages, PostgresEvents, PostgresCursors, PostgresMembership,
                        PostgresGroups, PostgresArchive, PostgresIntegrity):
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    @classmethod
    def from_url(cls, url: str) -> PostgresMessageDB:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise InvalidInput("PostgresMessageDB needs postgresql://user@host:port/db", url=url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            min_size = int(query.pop("min_size", 1))
            max_size = int(query.pop("max_size", 10))
        except ValueError as exc:
            raise InvalidInput(f"bad pool size in URL: {exc}", url=url) from exc
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(query), ""))
        return cls(dsn, min_size=min_size, max_size=max(min_size, max_size))

    @property
    def dsn(self) -> str:
        return self._dsn

    # -- lifecycle ------------------------------------------------------------------------
    async def create_database_if_missing(self) -> bool:
        parts = urlsplit(self._dsn)
        name = parts.path.lstrip("/")
        if not name:
            raise InvalidInput("the PostgreSQL URL names no database", url=self._dsn)
        # The server's maintenance database: CREATE DATABASE cannot run inside the one it makes.
        admin_dsn = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
        with translated("create the database"):
            conn = await asyncpg.connect(admin_dsn, timeout=_ACQUIRE_TIMEOUT_S)
            try:
                if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                    return False
                quoted = '"' + name.replace('"', '""') + '"'
                try:
                    await conn.execute(f"CREATE DATABASE {quoted}")
                except asyncpg.exceptions.DuplicateDatabaseError:
                    return False  # another migrator made it a moment ago
                return True
            finally:
                await conn.close()

    async def start(self) -> None:
        if self._pool is not None:
            return
        with translated("connect to PostgreSQL"):
            pool = await asyncpg.create_pool(self._dsn, min_size=self._min_size, max_size=self._max_size,
                                             command_timeout=60)
        self._pool = pool
        async with self._conn("read storage mode") as conn:
            mode = await storage_mode(conn)
        if mode == "native-partitions":
            await self._maintain_partitions()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @asynccontextmanager
    async def _conn(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; asyncpg errors inside the block leave as Flare errors."""
        if self._pool is None:
            raise BackendUnavailable("the message database is not started or already closed")
        with translated(what):
            # Bounded: after a server restart a stale connection must not park callers forever.
            conn = await self._pool.acquire(timeout=_ACQUIRE_TIMEOUT_S)
            try:
                yield conn
            except BaseException as exc:
                if not isinstance(exc, asyncpg.exceptions.PostgresError):
                    # A client-side failure (server gone, protocol state unknown): never hand
                    # this connection out again; the pool opens a fresh one.
                    conn.terminate()
                await self._pool.release(conn, timeout=_ACQUIRE_TIMEOUT_S)
                raise
            await self._pool.release(conn, timeout=_ACQUIRE_TIMEOUT_S)
