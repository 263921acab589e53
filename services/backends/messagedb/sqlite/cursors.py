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
        rows = [(u.user_id, u.device_id, u.conversation_id, u.seq, u.event_id) for u in updates]

        def run(conn: sqlite3.Connection) -> None:
            # max() per column: a late, stale update from a slow device never moves a cursor back.
            conn.executemany(
                "INSERT INTO cursors (user_id, device_id, conversation_id, seq, event_id) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id, device_id, conversation_id) DO UPDATE SET "
                "seq = max(seq, excluded.seq), event_id = max(event_id, excluded.event_id)",
                rows,
            )

        await self._db.write(run, "advance_cursors")
