"""The `events` table and its per-conversation counter `event_counters`."""

from __future__ import annotations

from dataclasses import replace

from services.common import codec
from services.common.ids import ConversationId, UserId
from services.common.model import ConversationEvent, SyncType

from ._rows import Connect

__all__ = ["PostgresEvents"]


def _row_to_event(row) -> ConversationEvent:
    return ConversationEvent(
        conversation_id=ConversationId(row["conversation_id"]), sync_type=SyncType(row["sync_type"]),
        msg_id=row["msg_id"], seq=row["seq"], actor_id=UserId(row["actor_id"]), timestamp=row["timestamp"],
        for_user=None if row["for_user"] is None else UserId(row["for_user"]), event_id=row["event_id"],
        payload=codec.loads(row["payload"]),
    )


class PostgresEvents:
    _conn: Connect

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
