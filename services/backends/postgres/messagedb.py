"""`postgresql://user[:password]@host:port/db[?min_size=…&max_size=…]` — the MessageDB port on
PostgreSQL (asyncpg pool). Schema and time partitioning: see _schema.py.

Batches travel as arrays through `unnest`, so a whole insert, lookup or cursor update is
one statement and one round trip, whatever its size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg

from services.backends.messagedb import CursorUpdate, GroupMember, GroupRecord
from services.common import codec
from services.common.errors import BackendUnavailable, InvalidInput, NotFound
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import ConversationEvent, Cursor, Message, SyncType

from ._errors import translated
from ._schema import MIGRATION_LOCK, MIGRATIONS, ensure_partitions, storage_mode

__all__ = ["PostgresMessageDB"]

_ACQUIRE_TIMEOUT_S = 10.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_COLUMNS = ("msg_id, conversation_id, seq, sender_id, sender_device, client_msg_id, content_type, "
            "body::text, created_at, flags")
_M_COLUMNS = ", ".join(f"m.{c}" for c in _COLUMNS.split(", "))


def _to_time(ms: int) -> datetime:
    return _EPOCH + ms * _MS


def _to_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def _row_to_message(row) -> Message:
    return Message(
        msg_id=row["msg_id"], client_msg_id=row["client_msg_id"],
        conversation_id=ConversationId(row["conversation_id"]), sender_id=UserId(row["sender_id"]),
        sender_device=DeviceId(row["sender_device"]), content_type=row["content_type"],
        body=codec.loads(row["body"]), created_at=_to_ms(row["created_at"]), seq=row["seq"], flags=row["flags"],
    )


def _row_to_event(row) -> ConversationEvent:
    return ConversationEvent(
        conversation_id=ConversationId(row["conversation_id"]), sync_type=SyncType(row["sync_type"]),
        msg_id=row["msg_id"], seq=row["seq"], actor_id=UserId(row["actor_id"]), timestamp=row["timestamp"],
        for_user=None if row["for_user"] is None else UserId(row["for_user"]), event_id=row["event_id"],
        payload=codec.loads(row["payload"]),
    )


_INSERT_MESSAGES = f"""
WITH given AS (
    SELECT DISTINCT ON (msg_id) *
    FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
                $8::text[], $9::timestamptz[], $10::integer[]) WITH ORDINALITY
         AS g(msg_id, conversation_id, seq, sender_id, sender_device, client_msg_id, content_type, body,
              created_at, flags, ord)
    ORDER BY msg_id, ord
), fresh AS (
    INSERT INTO message_keys (msg_id, conversation_id, seq, sender_id, client_msg_id, created_at)
    SELECT msg_id, conversation_id, seq, sender_id, client_msg_id, created_at FROM given ORDER BY ord
    ON CONFLICT (msg_id) DO NOTHING
    RETURNING msg_id
)
INSERT INTO messages ({_COLUMNS.replace("body::text", "body")})
SELECT g.msg_id, g.conversation_id, g.seq, g.sender_id, g.sender_device, g.client_msg_id, g.content_type,
       g.body::json, g.created_at, g.flags
FROM given g JOIN fresh USING (msg_id)
"""

_FIND_EXISTING = f"""
WITH q AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY
                  AS q(given, sender_id, client_msg_id, ord)
), hits AS (
    SELECT q.ord, q.given, k.msg_id, k.created_at, 0 AS preference
    FROM q JOIN message_keys k ON k.msg_id = q.given
    UNION ALL
    SELECT q.ord, q.given, k.msg_id, k.created_at, 1
    FROM q JOIN message_keys k ON k.sender_id = q.sender_id AND k.client_msg_id = q.client_msg_id
), best AS (
    SELECT DISTINCT ON (ord) given, msg_id, created_at FROM hits ORDER BY ord, preference
)
SELECT best.given, {_M_COLUMNS}
FROM best JOIN messages m ON m.msg_id = best.msg_id AND m.created_at = best.created_at
"""

# One row per update, applied in order: each column moves to max(current, given) only when
# the cursor already reaches the range's start (after_*), so it never jumps over a gap.
_ADVANCE_CURSOR = """
INSERT INTO cursors (user_id, device_id, conversation_id, seq, event_id)
VALUES ($1, $2, $3, CASE WHEN $5::bigint <= 0 THEN $4::bigint ELSE 0 END,
        CASE WHEN $7::bigint <= 0 THEN $6::bigint ELSE 0 END)
ON CONFLICT (user_id, device_id, conversation_id) DO UPDATE SET
    seq = CASE WHEN cursors.seq >= $5::bigint THEN GREATEST(cursors.seq, $4::bigint) ELSE cursors.seq END,
    event_id = CASE WHEN cursors.event_id >= $7::bigint THEN GREATEST(cursors.event_id, $6::bigint)
                    ELSE cursors.event_id END
"""


class PostgresMessageDB:
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

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        if self._pool is not None:
            return
        with translated("connect to PostgreSQL"):
            pool = await asyncpg.create_pool(self._dsn, min_size=self._min_size, max_size=self._max_size,
                                             command_timeout=60)
        self._pool = pool
        # Keep the month partitions ahead of the clock on every start of a migrated schema.
        async with self._conn("maintain partitions") as conn:
            if await storage_mode(conn) == "native-partitions":
                await self._with_lock(conn, ensure_partitions)

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

    @staticmethod
    async def _with_lock(conn: asyncpg.Connection, work):
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            return await work(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)

    # -- migrations -------------------------------------------------------------------------
    async def migrate(self) -> list[str]:
        async def run(conn: asyncpg.Connection) -> list[str]:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL)")
            done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
            applied = []
            for name, migration in MIGRATIONS:
                if name in done:
                    continue
                async with conn.transaction():
                    await migration(conn)
                    await conn.execute("INSERT INTO schema_migrations (name, applied_at) VALUES ($1, now())", name)
                applied.append(name)
            await ensure_partitions(conn)
            return applied

        async with self._conn("migrate") as conn:
            return await self._with_lock(conn, run)

    async def applied_migrations(self) -> list[str]:
        async with self._conn("read migrations") as conn:
            if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
                return []
            return [row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations ORDER BY name")]

    # -- messages -------------------------------------------------------------------------------
    async def insert_messages(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        for m in messages:
            if m.seq <= 0:
                raise InvalidInput("messages are stored with their seq assigned", msg_id=m.msg_id)
        columns = (
            [m.msg_id for m in messages], [m.conversation_id for m in messages], [m.seq for m in messages],
            [m.sender_id for m in messages], [m.sender_device for m in messages],
            [m.client_msg_id for m in messages], [m.content_type for m in messages],
            [codec.dumps_str(m.body) for m in messages], [_to_time(m.created_at) for m in messages],
            [m.flags for m in messages],
        )
        async with self._conn("insert messages") as conn:
            await conn.execute(_INSERT_MESSAGES, *columns)

    async def find_existing(self, messages: Sequence[Message]) -> dict[int, Message]:
        if not messages:
            return {}
        async with self._conn("find existing messages") as conn:
            rows = await conn.fetch(_FIND_EXISTING, [m.msg_id for m in messages], [m.sender_id for m in messages],
                                    [m.client_msg_id for m in messages])
        return {row["given"]: _row_to_message(row) for row in rows}

    async def max_seqs(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        ids = list(dict.fromkeys(conversation_ids))
        if not ids:
            return {}
        async with self._conn("read max seqs") as conn:
            rows = await conn.fetch(
                "SELECT conversation_id, max(seq) AS seq FROM message_keys WHERE conversation_id = ANY($1::text[]) "
                "GROUP BY conversation_id", ids)
        out = dict.fromkeys(ids, 0)
        out.update({row["conversation_id"]: row["seq"] for row in rows})
        return out

    async def get_message(self, msg_id: int) -> Message | None:
        async with self._conn("read message") as conn:
            row = await conn.fetchrow(
                f"SELECT {_M_COLUMNS} FROM message_keys k "
                "JOIN messages m ON m.msg_id = k.msg_id AND m.created_at = k.created_at WHERE k.msg_id = $1", msg_id)
        return None if row is None else _row_to_message(row)

    async def messages_after(self, conversation_id: str, after_seq: int, *, limit: int = 200) -> list[Message]:
        async with self._conn("read messages") as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                conversation_id, after_seq, limit)
        return [_row_to_message(row) for row in rows]

    async def set_flags(self, msg_id: int, flags: int) -> None:
        async with self._conn("set message flags") as conn:
            status = await conn.execute(
                "UPDATE messages SET flags = $2 WHERE msg_id = $1 "
                "AND created_at = (SELECT created_at FROM message_keys WHERE msg_id = $1)", msg_id, flags)
        if status.endswith(" 0"):
            raise NotFound(f"no message {msg_id}", msg_id=msg_id)

    async def count_messages(self, conversation_id: str | None = None) -> int:
        async with self._conn("count messages") as conn:
            if conversation_id is None:
                return await conn.fetchval("SELECT count(*) FROM message_keys")
            return await conn.fetchval("SELECT count(*) FROM message_keys WHERE conversation_id = $1", conversation_id)

    # -- events -----------------------------------------------------------------------------------
    async def append_event(self, event: ConversationEvent) -> ConversationEvent:
        async with self._conn("append event") as conn, conn.transaction():
            # The counter row's lock serializes writers of one conversation: ids stay 1, 2, 3 …
            event_id = await conn.fetchval(
                "INSERT INTO event_counters (conversation_id, last_event_id) VALUES ($1, 1) "
                "ON CONFLICT (conversation_id) DO UPDATE SET last_event_id = event_counters.last_event_id + 1 "
                "RETURNING last_event_id", event.conversation_id)
            await conn.execute(
                "INSERT INTO events (conversation_id, event_id, sync_type, msg_id, seq, actor_id, timestamp, "
                "for_user, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::json)",
                event.conversation_id, event_id, event.sync_type.value, event.msg_id, event.seq, event.actor_id,
                event.timestamp, event.for_user, codec.dumps_str(event.payload))
        return replace(event, event_id=event_id)

    async def events_after(self, conversation_id: str, after_event_id: int, *, user_id: str,
                           limit: int = 200) -> list[ConversationEvent]:
        async with self._conn("read events") as conn:
            rows = await conn.fetch(
                "SELECT conversation_id, event_id, sync_type, msg_id, seq, actor_id, timestamp, for_user, "
                "payload::text AS payload FROM events "
                "WHERE conversation_id = $1 AND event_id > $2 AND (for_user IS NULL OR for_user = $3) "
                "ORDER BY event_id LIMIT $4", conversation_id, after_event_id, user_id, limit)
        return [_row_to_event(row) for row in rows]

    async def deleted_seqs(self, conversation_id: str, user_id: str, *, from_seq: int, to_seq: int) -> set[int]:
        async with self._conn("read deleted seqs") as conn:
            rows = await conn.fetch(
                "SELECT seq FROM events WHERE conversation_id = $1 AND for_user = $2 AND sync_type = 'delete' "
                "AND seq BETWEEN $3 AND $4", conversation_id, user_id, from_seq, to_seq)
        return {row["seq"] for row in rows}

    async def read_position(self, conversation_id: str, user_id: str) -> int:
        async with self._conn("read position") as conn:
            return await conn.fetchval(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE conversation_id = $1 AND actor_id = $2 "
                "AND sync_type = 'read'", conversation_id, user_id)

    async def last_event_id(self, conversation_id: str) -> int:
        async with self._conn("last event id") as conn:
            value = await conn.fetchval("SELECT last_event_id FROM event_counters WHERE conversation_id = $1",
                                        conversation_id)
        return value or 0

    # -- cursors ------------------------------------------------------------------------------------
    async def get_cursors(self, user_id: str, device_id: str) -> dict[str, Cursor]:
        async with self._conn("read cursors") as conn:
            rows = await conn.fetch(
                "SELECT conversation_id, seq, event_id FROM cursors WHERE user_id = $1 AND device_id = $2",
                user_id, device_id)
        return {row["conversation_id"]: Cursor(row["seq"], row["event_id"]) for row in rows}

    async def advance_cursors(self, updates: Sequence[CursorUpdate]) -> None:
        if not updates:
            return
        async with self._conn("advance cursors") as conn:
            async with conn.transaction():
                await conn.executemany(_ADVANCE_CURSOR, [
                    (u.user_id, u.device_id, u.conversation_id, u.seq, u.after_seq, u.event_id, u.after_event_id)
                    for u in updates])

    # -- membership ---------------------------------------------------------------------------------
    async def add_members(self, conversation_id: str, user_ids: Sequence[str], *, role: str = "member",
                          visible_after_seq: int = 0, visible_after_event: int = 0, joined_at: int = 0) -> None:
        if not user_ids:
            return
        async with self._conn("add members") as conn:
            await conn.execute(
                "INSERT INTO members (conversation_id, user_id, role, visible_after_seq, visible_after_event, joined_at) "
                "SELECT $1, u, $3, $4, $5, $6 FROM unnest($2::text[]) AS u ON CONFLICT DO NOTHING",
                conversation_id, list(user_ids), role, visible_after_seq, visible_after_event, joined_at)

    async def remove_members(self, conversation_id: str, user_ids: Sequence[str]) -> None:
        if not user_ids:
            return
        async with self._conn("remove members") as conn:
            await conn.execute("DELETE FROM members WHERE conversation_id = $1 AND user_id = ANY($2::text[])",
                               conversation_id, list(user_ids))

    async def members(self, conversation_id: str) -> list[UserId]:
        async with self._conn("read members") as conn:
            # COLLATE "C": byte order, the same as Python's sorted() and the SQLite adapter.
            rows = await conn.fetch(
                'SELECT user_id FROM members WHERE conversation_id = $1 ORDER BY user_id COLLATE "C"', conversation_id)
        return [UserId(row["user_id"]) for row in rows]

    async def conversations_of(self, user_id: str) -> list[ConversationId]:
        async with self._conn("read conversations") as conn:
            rows = await conn.fetch(
                'SELECT conversation_id FROM members WHERE user_id = $1 ORDER BY conversation_id COLLATE "C"',
                user_id)
        return [ConversationId(row["conversation_id"]) for row in rows]

    # -- groups -------------------------------------------------------------------------------------
    async def create_group(self, group: GroupRecord) -> bool:
        async with self._conn("create group") as conn:
            status = await conn.execute(
                "INSERT INTO groups (conversation_id, join_policy, history, created_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING", group.conversation_id, group.join_policy, group.history, group.created_at)
        return status.endswith(" 1")

    async def get_group(self, conversation_id: str) -> GroupRecord | None:
        async with self._conn("read group") as conn:
            row = await conn.fetchrow("SELECT conversation_id, join_policy, history, created_at FROM groups "
                                      "WHERE conversation_id = $1", conversation_id)
        if row is None:
            return None
        return GroupRecord(ConversationId(row["conversation_id"]), row["join_policy"], row["history"], row["created_at"])

    async def group_members(self, conversation_id: str) -> list[GroupMember]:
        async with self._conn("read group members") as conn:
            rows = await conn.fetch(
                "SELECT user_id, role, visible_after_seq, visible_after_event, joined_at FROM members "
                'WHERE conversation_id = $1 ORDER BY joined_at, user_id COLLATE "C"', conversation_id)
        return [GroupMember(UserId(r["user_id"]), r["role"], r["visible_after_seq"], r["visible_after_event"],
                            r["joined_at"]) for r in rows]

    async def set_member_role(self, conversation_id: str, user_id: str, role: str) -> bool:
        async with self._conn("set member role") as conn:
            status = await conn.execute("UPDATE members SET role = $3 WHERE conversation_id = $1 AND user_id = $2",
                                        conversation_id, user_id, role)
        return status.endswith(" 1")
