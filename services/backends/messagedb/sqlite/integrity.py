"""Raw reads for consistency checks on SQLite (IntegrityStore)."""

from __future__ import annotations

import sqlite3

from services.backends.embedded._sqlite import SQLiteThreads
from services.common.ids import ConversationId, DeviceId, UserId

from ..ports import CursorBeyondMax, StoredKey

__all__ = ["SQLiteIntegrity"]


def _scope(conversation_id: str | None, since_ms: int | None, *, time_column: str | None) -> tuple[str, list]:
    clauses, args = [], []
    if conversation_id is not None:
        clauses.append("conversation_id = ?")
        args.append(conversation_id)
    if since_ms is not None and time_column is not None:
        clauses.append(f"{time_column} >= ?")
        args.append(since_ms)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


class SQLiteIntegrity:
    _db: SQLiteThreads

    async def stored_keys(self, *, conversation_id: str | None = None, since_ms: int | None = None) -> list[StoredKey]:
        def run(conn: sqlite3.Connection) -> list[StoredKey]:
            where, args = _scope(conversation_id, since_ms, time_column="created_at")
            out = [StoredKey(msg_id, ConversationId(c), seq, UserId(s), cm, t, "l1", bool(ok))
                   for msg_id, c, seq, s, cm, t, ok in conn.execute(
                       "SELECT msg_id, conversation_id, seq, sender_id, client_msg_id, created_at, json_valid(body) "
                       f"FROM messages{where}", args)]
            # archived_keys has no time column: --since keeps the keys of chunks whose rows are that new.
            where, args = _scope(conversation_id, None, time_column=None)
            if since_ms is not None:
                where += (" AND " if where else " WHERE ") + (
                    "chunk_id IN (SELECT chunk_id FROM archive_ranges WHERE max_created_at >= ?)")
                args.append(since_ms)
            out += [StoredKey(msg_id, ConversationId(c), seq, UserId(s), cm, 0, "key")
                    for msg_id, c, seq, s, cm in conn.execute(
                        f"SELECT msg_id, conversation_id, seq, sender_id, client_msg_id FROM archived_keys{where}",
                        args)]
            return out

        return await self._db.read(run, "read stored keys")

    async def cursors_beyond_max(self, *, conversation_id: str | None = None) -> list[CursorBeyondMax]:
        def run(conn: sqlite3.Connection) -> list[CursorBeyondMax]:
            where, args = _scope(conversation_id, None, time_column=None)
            rows = conn.execute(
                "WITH seqs AS (SELECT conversation_id, MAX(seq) AS max_seq FROM (SELECT conversation_id, seq FROM "
                "messages UNION ALL SELECT conversation_id, seq FROM archived_keys) GROUP BY conversation_id) "
                "SELECT c.user_id, c.device_id, c.conversation_id, c.seq, COALESCE(s.max_seq, 0) FROM "
                f"(SELECT * FROM cursors{where}) c LEFT JOIN seqs s USING (conversation_id) "
                "WHERE c.seq > COALESCE(s.max_seq, 0) ORDER BY c.conversation_id, c.user_id, c.device_id", args)
            return [CursorBeyondMax(UserId(u), DeviceId(d), ConversationId(c), seq, top) for u, d, c, seq, top in rows]

        return await self._db.read(run, "read cursors beyond max")

    async def member_rows(self, *, conversation_id: str | None = None) -> list[tuple[ConversationId, UserId]]:
        def run(conn: sqlite3.Connection) -> list[tuple[ConversationId, UserId]]:
            where, args = _scope(conversation_id, None, time_column=None)
            return [(ConversationId(c), UserId(u)) for c, u in conn.execute(
                f"SELECT conversation_id, user_id FROM members{where} ORDER BY conversation_id, user_id", args)]

        return await self._db.read(run, "read members")
