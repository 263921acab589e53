"""Raw reads for consistency checks on PostgreSQL (IntegrityStore)."""

from __future__ import annotations

from services.common.ids import ConversationId, DeviceId, UserId

from ..ports import CursorBeyondMax, StoredKey
from ._rows import Connect, to_ms, to_time

__all__ = ["PostgresIntegrity"]


class PostgresIntegrity:
    _conn: Connect

    async def stored_keys(self, *, conversation_id: str | None = None, since_ms: int | None = None) -> list[StoredKey]:
        since = None if since_ms is None else to_time(since_ms)
        scope = "($1::text IS NULL OR conversation_id = $1) AND ($2::timestamptz IS NULL OR created_at >= $2)"
        async with self._conn("read stored keys") as conn:
            # json is validated on input, so a stored body always parses: readable stays True.
            rows = await conn.fetch(
                "SELECT msg_id, conversation_id, seq, sender_id, client_msg_id, created_at, 'l1' AS place "
                f"FROM messages WHERE {scope} UNION ALL "
                "SELECT msg_id, conversation_id, seq, sender_id, client_msg_id, created_at, 'key' "
                f"FROM message_keys WHERE {scope}", conversation_id, since)
        return [StoredKey(r["msg_id"], ConversationId(r["conversation_id"]), r["seq"], UserId(r["sender_id"]),
                          r["client_msg_id"], to_ms(r["created_at"]), r["place"]) for r in rows]

    async def cursors_beyond_max(self, *, conversation_id: str | None = None) -> list[CursorBeyondMax]:
        async with self._conn("read cursors beyond max") as conn:
            rows = await conn.fetch(
                "SELECT c.user_id, c.device_id, c.conversation_id, c.seq, COALESCE(s.max_seq, 0) AS max_seq "
                "FROM cursors c LEFT JOIN (SELECT conversation_id, max(seq) AS max_seq FROM message_keys "
                "GROUP BY conversation_id) s USING (conversation_id) "
                "WHERE ($1::text IS NULL OR c.conversation_id = $1) AND c.seq > COALESCE(s.max_seq, 0) "
                'ORDER BY c.conversation_id COLLATE "C", c.user_id COLLATE "C", c.device_id COLLATE "C"',
                conversation_id)
        return [CursorBeyondMax(UserId(r["user_id"]), DeviceId(r["device_id"]), ConversationId(r["conversation_id"]),
                                r["seq"], r["max_seq"]) for r in rows]

    async def member_rows(self, *, conversation_id: str | None = None) -> list[tuple[ConversationId, UserId]]:
        async with self._conn("read members") as conn:
            rows = await conn.fetch(
                "SELECT conversation_id, user_id FROM members WHERE ($1::text IS NULL OR conversation_id = $1) "
                'ORDER BY conversation_id COLLATE "C", user_id COLLATE "C"', conversation_id)
        return [(ConversationId(r["conversation_id"]), UserId(r["user_id"])) for r in rows]
