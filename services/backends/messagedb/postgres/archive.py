"""The archive catalog on PostgreSQL (archive_chunks, archive_ranges; V003).

An archived message leaves `messages` but keeps its message_keys row. When every row of a
month partition older than the run's cutoff is in the chunk being finished, the partition
is detached and dropped instead of deleted row by row (no dead tuples, no vacuum debt).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg

from services.common import codec
from services.common.ids import ConversationId
from services.common.model import Message

from ..history import ArchiveLocked
from ..ports import ArchiveChunk, ArchivedRange
from ._rows import COLUMNS, Connect, row_to_message, to_ms, to_time
from .partitions import MIGRATION_LOCK, month_start, storage_mode

__all__ = ["PostgresArchive", "ARCHIVE_LOCK"]

ARCHIVE_LOCK = MIGRATION_LOCK + 1
_BATCH = 5000
_CHUNK_COLUMNS = "chunk_id, state, object_key, manifest_key, row_count, codec, before_ms, created_at, sha256"
_RANGE_COLUMNS = "conversation_id, min_seq, max_seq, row_count, min_created_at, max_created_at, chunk_id"

_RESTORE = f"""
WITH given AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::timestamptz[], $10::integer[])
         AS g(msg_id, conversation_id, seq, sender_id, sender_device, client_msg_id, content_type, body,
              created_at, flags)
), keys AS (
    INSERT INTO message_keys (msg_id, conversation_id, seq, sender_id, client_msg_id, created_at)
    SELECT msg_id, conversation_id, seq, sender_id, client_msg_id, created_at FROM given
    ON CONFLICT (msg_id) DO NOTHING
)
INSERT INTO messages ({COLUMNS.replace("body::text", "body")})
SELECT g.msg_id, g.conversation_id, g.seq, g.sender_id, g.sender_device, g.client_msg_id, g.content_type,
       g.body::json, g.created_at, g.flags
FROM given g
WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.msg_id = g.msg_id AND m.created_at = g.created_at)
"""


def _range(row) -> ArchivedRange:
    return ArchivedRange(ConversationId(row["conversation_id"]), row["min_seq"], row["max_seq"], row["row_count"],
                         row["min_created_at"], row["max_created_at"], row["chunk_id"])


async def delete_bodies(conn: asyncpg.Connection, msg_ids: Sequence[int]) -> int:
    """One batch of the delete (a module function so a crash test can stop between batches)."""
    status = await conn.execute(
        "DELETE FROM messages m USING message_keys k WHERE k.msg_id = ANY($1::bigint[]) "
        "AND m.msg_id = k.msg_id AND m.created_at = k.created_at", list(msg_ids))
    return int(status.rsplit(" ", 1)[1])


async def _drop_whole_partitions(conn: asyncpg.Connection, msg_ids: list[int], before_ms: int) -> int:
    if await storage_mode(conn) != "native-partitions":
        return 0
    cutoff = to_time(before_ms)
    dropped = 0
    names = [r["relname"] for r in await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'messages'::regclass AND c.relname ~ '^messages_p[0-9]{6}$' ORDER BY c.relname")]
    for name in names:
        low = datetime.strptime(name[len("messages_p"):] + "01+0000", "%Y%m%d%z")
        if month_start(low, 1) > cutoff:
            continue  # newer rows may still arrive for that month
        total = await conn.fetchval(f"SELECT count(*) FROM {name}")
        ours = await conn.fetchval(f"SELECT count(*) FROM {name} WHERE msg_id = ANY($1::bigint[])", msg_ids)
        if total and total == ours:
            await conn.execute(f"ALTER TABLE messages DETACH PARTITION {name}")
            await conn.execute(f"DROP TABLE {name}")
            dropped += total
    return dropped


class PostgresArchive:
    _conn: Connect

    @asynccontextmanager
    async def archive_lock(self, *, timeout_s: float) -> AsyncIterator[None]:
        async with self._conn("take the archive lock") as conn:
            deadline, delay = time.monotonic() + timeout_s, 0.05
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", ARCHIVE_LOCK):
                if time.monotonic() >= deadline:
                    raise ArchiveLocked(f"an archive job holds the PostgreSQL advisory lock {ARCHIVE_LOCK:#x}; "
                                        f"gave up after {timeout_s:g}s", lock=ARCHIVE_LOCK)
                await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, 1.0)
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", ARCHIVE_LOCK)

    async def archivable(self, *, before_ms: int, conversation_id: str | None = None) -> list[ArchivedRange]:
        async with self._conn("plan archive") as conn:
            rows = await conn.fetch(
                "SELECT conversation_id, min(seq) AS lo, max(seq) AS hi, count(*) AS n, min(created_at) AS t0, "
                "max(created_at) AS t1, sum(octet_length(body::text)) AS b FROM messages "
                "WHERE created_at < $1 AND ($2::text IS NULL OR conversation_id = $2) "
                'GROUP BY conversation_id ORDER BY conversation_id COLLATE "C"', to_time(before_ms), conversation_id)
        return [ArchivedRange(ConversationId(r["conversation_id"]), r["lo"], r["hi"], r["n"], to_ms(r["t0"]),
                              to_ms(r["t1"]), body_bytes=int(r["b"] or 0)) for r in rows]

    async def archive_batch(self, *, before_ms: int, limit: int, conversation_id: str | None = None) -> list[Message]:
        async with self._conn("select rows to archive") as conn:
            rows = await conn.fetch(
                f"SELECT {COLUMNS} FROM messages WHERE created_at < $1 AND ($2::text IS NULL OR conversation_id = $2) "
                'ORDER BY conversation_id COLLATE "C", seq LIMIT $3', to_time(before_ms), conversation_id, limit)
        return [row_to_message(r) for r in rows]

    async def begin_chunk(self, chunk: ArchiveChunk) -> None:
        async with self._conn("record pending archive chunk") as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO archive_chunks ({_CHUNK_COLUMNS}) VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8)",
                chunk.chunk_id, chunk.object_key, chunk.manifest_key, chunk.row_count, chunk.codec, chunk.before_ms,
                chunk.created_at_ms, chunk.sha256)
            await conn.executemany(
                f"INSERT INTO archive_ranges ({_RANGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [(r.conversation_id, r.min_seq, r.max_seq, r.row_count, r.min_created_ms, r.max_created_ms,
                  chunk.chunk_id) for r in chunk.ranges])

    async def finish_chunk(self, chunk_id: str, *, msg_ids: Sequence[int], sha256: str) -> int:
        ids = list(msg_ids)
        async with self._conn("finish archive chunk") as conn, conn.transaction():
            before_ms = await conn.fetchval(
                "SELECT before_ms FROM archive_chunks WHERE chunk_id = $1 FOR UPDATE", chunk_id)
            moved = await _drop_whole_partitions(conn, ids, before_ms) if before_ms is not None else 0
            for start in range(0, len(ids), _BATCH):
                moved += await delete_bodies(conn, ids[start:start + _BATCH])
            await conn.execute("UPDATE archive_chunks SET state = 'archived', sha256 = $2 WHERE chunk_id = $1",
                               chunk_id, sha256)
        return moved

    async def forget_chunk(self, chunk_id: str) -> None:
        async with self._conn("forget pending archive chunk") as conn, conn.transaction():
            await conn.execute("DELETE FROM archive_ranges WHERE chunk_id = $1 AND EXISTS (SELECT 1 FROM "
                               "archive_chunks WHERE chunk_id = $1 AND state = 'pending')", chunk_id)
            await conn.execute("DELETE FROM archive_chunks WHERE chunk_id = $1 AND state = 'pending'", chunk_id)

    async def archive_chunks(self, *, state: str | None = None,
                             conversation_id: str | None = None) -> list[ArchiveChunk]:
        async with self._conn("list archive chunks") as conn:
            chunks = await conn.fetch(
                f"SELECT {_CHUNK_COLUMNS} FROM archive_chunks WHERE ($1::text IS NULL OR state = $1) AND "
                "($2::text IS NULL OR chunk_id IN (SELECT chunk_id FROM archive_ranges WHERE conversation_id = $2)) "
                "ORDER BY created_at, chunk_id", state, conversation_id)
            ranges = await conn.fetch(
                f"SELECT {_RANGE_COLUMNS} FROM archive_ranges WHERE chunk_id = ANY($1::text[]) "
                'ORDER BY conversation_id COLLATE "C", min_seq', [c["chunk_id"] for c in chunks])
        by_chunk: dict[str, list[ArchivedRange]] = {}
        for r in ranges:
            by_chunk.setdefault(r["chunk_id"], []).append(_range(r))
        return [ArchiveChunk(c["chunk_id"], c["state"], c["object_key"], c["manifest_key"], c["row_count"],
                             c["codec"], c["before_ms"], c["created_at"], sha256=c["sha256"],
                             ranges=tuple(by_chunk.get(c["chunk_id"], ()))) for c in chunks]

    async def archived_ranges(self, conversation_id: str, *, after_seq: int = 0) -> list[ArchivedRange]:
        async with self._conn("read archived ranges") as conn:
            rows = await conn.fetch(
                "SELECT r.conversation_id, r.min_seq, r.max_seq, r.row_count, r.min_created_at, r.max_created_at, "
                "r.chunk_id FROM archive_ranges r JOIN archive_chunks c USING (chunk_id) "
                "WHERE r.conversation_id = $1 AND r.max_seq > $2 AND c.state = 'archived' ORDER BY r.min_seq",
                conversation_id, after_seq)
        return [_range(r) for r in rows]

    async def restore_messages(self, messages: Sequence[Message], *, chunk_id: str) -> int:
        columns = (
            [m.msg_id for m in messages], [m.conversation_id for m in messages], [m.seq for m in messages],
            [m.sender_id for m in messages], [m.sender_device for m in messages],
            [m.client_msg_id for m in messages], [m.content_type for m in messages],
            [codec.dumps_str(m.body) for m in messages], [to_time(m.created_at) for m in messages],
            [m.flags for m in messages],
        )
        covered = {(m.conversation_id, m.seq) for m in messages}
        async with self._conn("restore archived messages") as conn, conn.transaction():
            status = await conn.execute(_RESTORE, *columns) if messages else "INSERT 0 0"
            for r in await conn.fetch("SELECT conversation_id, min_seq, max_seq FROM archive_ranges "
                                      "WHERE chunk_id = $1", chunk_id):
                if (r["conversation_id"], r["min_seq"]) in covered and (r["conversation_id"], r["max_seq"]) in covered:
                    await conn.execute("DELETE FROM archive_ranges WHERE chunk_id = $1 AND conversation_id = $2 "
                                       "AND min_seq = $3", chunk_id, r["conversation_id"], r["min_seq"])
            await conn.execute("UPDATE archive_chunks SET state = 'restored' WHERE chunk_id = $1 AND NOT EXISTS "
                               "(SELECT 1 FROM archive_ranges WHERE chunk_id = $1)", chunk_id)
        return int(status.rsplit(" ", 1)[1])
