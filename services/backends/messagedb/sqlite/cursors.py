"""The `cursors` table on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from services.backends.embedded._sqlite import SQLiteThreads
from services.common.model import Cursor

from ..ports import CursorUpdate

__all__ = ["SQLiteCursors"]


class SQLiteCursors:
    _db: SQLiteThreads

    async def get_cursors(self, user_id: str, device_id: str) -> dict[str, Cursor]:
        def run(conn: sqlite3.Connection) -> dict[str, Cursor]:
            rows = conn.execute(
                "SELECT conversation_id, seq, event_id FROM cursors WHERE user_id = ? AND device_id = ?",
                (user_id, device_id),
            )
            return {conversation_id: Cursor(seq, event_id) for conversation_id, seq, event_id in rows}

        return await self._db.read(run, "get_cursors")

    async def advance_cursors(self, updates: Sequence[CursorUpdate]) -> None:
        if not updates:
            return
        rows = [(u.user_id, u.device_id, u.conversation_id, u.seq, u.after_seq, u.event_id, u.after_event_id)
                for u in updates]

        def run(conn: sqlite3.Connection) -> None:
            # In order, each column separately: move to max(current, given) only when the
            # cursor already reaches the range's start, so it never jumps over a gap (nor back).
            conn.executemany(
                "INSERT INTO cursors (user_id, device_id, conversation_id, seq, event_id) VALUES "
                "(?1, ?2, ?3, CASE WHEN ?5 <= 0 THEN ?4 ELSE 0 END, CASE WHEN ?7 <= 0 THEN ?6 ELSE 0 END) "
                "ON CONFLICT (user_id, device_id, conversation_id) DO UPDATE SET "
                "seq = CASE WHEN seq >= ?5 THEN max(seq, ?4) ELSE seq END, "
                "event_id = CASE WHEN event_id >= ?7 THEN max(event_id, ?6) ELSE event_id END",
                rows,
            )

        await self._db.write(run, "advance_cursors")
