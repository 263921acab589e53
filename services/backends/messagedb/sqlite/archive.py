"""The archive catalog on SQLite (archive_chunks, archive_ranges, archived_keys; V003).

Moving rows out keeps their keys in archived_keys, whose trigger on `messages` keeps the
uniqueness guards whole across L1 and L2.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from services.backends.embedded._sqlite import SQLiteThreads
from services.common.ids import ConversationId
from services.common.model import Message

from ..history import ArchiveLocked
from ..ports import ArchiveChunk, ArchivedRange
from ._locks import file_lock
from .messages import MESSAGE_COLUMNS, chunks, message_row, row_to_message

__all__ = ["SQLiteArchive"]

_CHUNK_COLUMNS = "chunk_id, state, object_key, manifest_key, row_count, codec, before_ms, created_at, sha256"
_RANGE_COLUMNS = "conversation_id, min_seq, max_seq, row_count, min_created_at, max_created_at, chunk_id"


def _range(row: tuple) -> ArchivedRange:
    conversation_id, min_seq, max_seq, row_count, min_created, max_created, chunk_id = row
    return ArchivedRange(ConversationId(conversation_id), min_seq, max_seq, row_count, min_created, max_created,
                         chunk_id)


def _chunks_with_ranges(conn: sqlite3.Connection, where: str, args: tuple) -> list[ArchiveChunk]:
    out = []
    for row in conn.execute(f"SELECT {_CHUNK_COLUMNS} FROM archive_chunks {where} ORDER BY created_at, chunk_id",
                            args).fetchall():
        ranges = tuple(_range(r) for r in conn.execute(
            f"SELECT {_RANGE_COLUMNS} FROM archive_ranges WHERE chunk_id = ? ORDER BY conversation_id, min_seq",
            (row[0],)))
        out.append(ArchiveChunk(*row[:8], sha256=row[8], ranges=ranges))
    return out


class SQLiteArchive:
    _db: SQLiteThreads

    def archive_lock(self, *, timeout_s: float) -> AbstractAsyncContextManager[None]:
        return file_lock(Path(f"{self._db.path}.archive-lock"), timeout_s=timeout_s,
                         locked=lambda why: ArchiveLocked(f"an archive job is running: {why}"))

    async def archivable(self, *, before_ms: int, conversation_id: str | None = None) -> list[ArchivedRange]:
        def run(conn: sqlite3.Connection) -> list[ArchivedRange]:
            where, args = "created_at < ?", [before_ms]
            if conversation_id is not None:
                where, args = where + " AND conversation_id = ?", [*args, conversation_id]
            rows = conn.execute(
                "SELECT conversation_id, MIN(seq), MAX(seq), COUNT(*), MIN(created_at), MAX(created_at), "
                f"SUM(LENGTH(CAST(body AS BLOB))) FROM messages WHERE {where} GROUP BY conversation_id "
                "ORDER BY conversation_id", args).fetchall()
            return [ArchivedRange(ConversationId(c), lo, hi, n, t0, t1, body_bytes=b or 0)
                    for c, lo, hi, n, t0, t1, b in rows]

        return await self._db.read(run, "plan archive")

    async def archive_batch(self, *, before_ms: int, limit: int, conversation_id: str | None = None) -> list[Message]:
        def run(conn: sqlite3.Connection) -> list[Message]:
            where, args = "created_at < ?", [before_ms]
            if conversation_id is not None:
                where, args = where + " AND conversation_id = ?", [*args, conversation_id]
            rows = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where} "
                                "ORDER BY conversation_id, seq LIMIT ?", [*args, limit]).fetchall()
            return [row_to_message(r) for r in rows]

        return await self._db.read(run, "select rows to archive")

    async def begin_chunk(self, chunk: ArchiveChunk) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute(f"INSERT INTO archive_chunks ({_CHUNK_COLUMNS}) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?)",
                         (chunk.chunk_id, chunk.object_key, chunk.manifest_key, chunk.row_count, chunk.codec,
                          chunk.before_ms, chunk.created_at_ms, chunk.sha256))
            conn.executemany(
                f"INSERT INTO archive_ranges ({_RANGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(r.conversation_id, r.min_seq, r.max_seq, r.row_count, r.min_created_ms, r.max_created_ms,
                  chunk.chunk_id) for r in chunk.ranges])

        await self._db.write(run, "record pending archive chunk")

    async def finish_chunk(self, chunk_id: str, *, msg_ids: Sequence[int], sha256: str) -> int:
        ids = list(msg_ids)

        def run(conn: sqlite3.Connection) -> int:
            moved = 0
            for part in chunks(ids):
                marks = ",".join("?" * len(part))
                conn.execute(
                    "INSERT OR IGNORE INTO archived_keys (msg_id, conversation_id, seq, sender_id, client_msg_id, "
                    f"chunk_id) SELECT msg_id, conversation_id, seq, sender_id, client_msg_id, ? FROM messages "
                    f"WHERE msg_id IN ({marks})", (chunk_id, *part))
                moved += delete_bodies(conn, part)
            conn.execute("UPDATE archive_chunks SET state = 'archived', sha256 = ? WHERE chunk_id = ?",
                         (sha256, chunk_id))
            return moved

        return await self._db.write(run, "finish archive chunk")

    async def forget_chunk(self, chunk_id: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM archive_ranges WHERE chunk_id = ?", (chunk_id,))
            conn.execute("DELETE FROM archive_chunks WHERE chunk_id = ? AND state = 'pending'", (chunk_id,))

        await self._db.write(run, "forget pending archive chunk")

    async def archive_chunks(self, *, state: str | None = None,
                             conversation_id: str | None = None) -> list[ArchiveChunk]:
        def run(conn: sqlite3.Connection) -> list[ArchiveChunk]:
            clauses, args = [], []
            if state is not None:
                clauses, args = ["state = ?"], [state]
            if conversation_id is not None:
                clauses.append("chunk_id IN (SELECT chunk_id FROM archive_ranges WHERE conversation_id = ?)")
                args.append(conversation_id)
            return _chunks_with_ranges(conn, f"WHERE {' AND '.join(clauses)}" if clauses else "", tuple(args))

        return await self._db.read(run, "list archive chunks")

    async def archived_ranges(self, conversation_id: str, *, after_seq: int = 0) -> list[ArchivedRange]:
        def run(conn: sqlite3.Connection) -> list[ArchivedRange]:
            rows = conn.execute(
                f"SELECT {', '.join('r.' + c for c in _RANGE_COLUMNS.split(', '))} FROM archive_ranges r "
                "JOIN archive_chunks c USING (chunk_id) WHERE r.conversation_id = ? AND r.max_seq > ? "
                "AND c.state = 'archived' ORDER BY r.min_seq", (conversation_id, after_seq)).fetchall()
            return [_range(r) for r in rows]

        return await self._db.read(run, "read archived ranges")

    async def restore_messages(self, messages: Sequence[Message], *, chunk_id: str) -> int:
        rows = [message_row(m) for m in messages]
        covered = {(m.conversation_id, m.seq) for m in messages}

        def run(conn: sqlite3.Connection) -> int:
            for part in chunks(rows):
                conn.execute(f"DELETE FROM archived_keys WHERE msg_id IN ({','.join('?' * len(part))})",
                             [r[0] for r in part])
            added = 0
            for row in rows:
                added += conn.execute(f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                      "ON CONFLICT (msg_id) DO NOTHING", row).rowcount
            # A range is restored when every seq of it is back (restore works per whole range).
            for conversation_id, min_seq, max_seq in conn.execute(
                    "SELECT conversation_id, min_seq, max_seq FROM archive_ranges WHERE chunk_id = ?",
                    (chunk_id,)).fetchall():
                if (conversation_id, min_seq) in covered and (conversation_id, max_seq) in covered:
                    conn.execute("DELETE FROM archive_ranges WHERE chunk_id = ? AND conversation_id = ? AND min_seq = ?",
                                 (chunk_id, conversation_id, min_seq))
            if not conn.execute("SELECT 1 FROM archive_ranges WHERE chunk_id = ?", (chunk_id,)).fetchone():
                conn.execute("UPDATE archive_chunks SET state = 'restored' WHERE chunk_id = ?", (chunk_id,))
            return added

        return await self._db.write(run, "restore archived messages")


def delete_bodies(conn: sqlite3.Connection, msg_ids: Sequence[int]) -> int:
    """One batch of the delete (a module function so a crash test can stop between batches)."""
    return conn.execute(f"DELETE FROM messages WHERE msg_id IN ({','.join('?' * len(msg_ids))})",
                        list(msg_ids)).rowcount
