"""The `events` table on SQLite (recall, delete, read, update)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from services.backends.embedded._sqlite import SQLiteThreads
from services.common import codec
from services.common.ids import ConversationId, UserId
from services.common.model import ConversationEvent, SyncType

__all__ = ["SQLiteEvents"]

_EVENT_COLUMNS = "conversation_id, event_id, sync_type, msg_id, seq, actor_id, timestamp, for_user, payload"


def _row_to_event(row: tuple) -> ConversationEvent:
    conversation_id, event_id, sync_type, msg_id, seq, actor_id, timestamp, for_user, payload = row
    return ConversationEvent(
        conversation_id=ConversationId(conversation_id), sync_type=SyncType(sync_type), msg_id=msg_id, seq=seq,
        actor_id=UserId(actor_id), timestamp=timestamp, for_user=None if for_user is None else UserId(for_user),
        event_id=event_id, payload=codec.loads(payload),
    )


class SQLiteEvents:
    _db: SQLiteThreads

    async def append_event(self, event: ConversationEvent) -> ConversationEvent:
        payload = codec.dumps_str(event.payload)

        def run(conn: sqlite3.Connection) -> int:
            (event_id,) = conn.execute(
                "SELECT COALESCE(MAX(event_id), 0) + 1 FROM events WHERE conversation_id = ?", (event.conversation_id,)
            ).fetchone()
            conn.execute(
                f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (event.conversation_id, event_id, event.sync_type.value, event.msg_id, event.seq, event.actor_id,
                 event.timestamp, event.for_user, payload),
            )
            return event_id

        return replace(event, event_id=await self._db.write(run, "append_event"))

    async def events_after(
        self, conversation_id: str, after_event_id: int, *, user_id: str, limit: int = 200
    ) -> list[ConversationEvent]:
        def run(conn: sqlite3.Connection) -> list[ConversationEvent]:
            rows = conn.execute(
                f"SELECT {_EVENT_COLUMNS} "
                "FROM events WHERE conversation_id = ? AND event_id > ? AND (for_user IS NULL OR for_user = ?) "
                "ORDER BY event_id LIMIT ?",
                (conversation_id, after_event_id, user_id, limit),
            ).fetchall()
            return [_row_to_event(row) for row in rows]

        return await self._db.read(run, "events_after")

    async def deleted_seqs(self, conversation_id: str, user_id: str, *, from_seq: int, to_seq: int) -> set[int]:
        def run(conn: sqlite3.Connection) -> set[int]:
            rows = conn.execute(
                "SELECT seq FROM events WHERE conversation_id = ? AND for_user = ? AND sync_type = 'delete' "
                "AND seq BETWEEN ? AND ?", (conversation_id, user_id, from_seq, to_seq))
            return {seq for (seq,) in rows}

        return await self._db.read(run, "deleted_seqs")

    async def read_position(self, conversation_id: str, user_id: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE conversation_id = ? AND actor_id = ? "
                "AND sync_type = 'read'", (conversation_id, user_id)).fetchone()[0]

        return await self._db.read(run, "read_position")

    async def last_event_id(self, conversation_id: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return conn.execute("SELECT COALESCE(MAX(event_id), 0) FROM events WHERE conversation_id = ?",
                                (conversation_id,)).fetchone()[0]

        return await self._db.read(run, "last_event_id")
