"""The `members` table on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from services.backends.embedded._sqlite import SQLiteThreads
from services.common.ids import ConversationId, UserId

__all__ = ["SQLiteMembership"]


class SQLiteMembership:
    _db: SQLiteThreads

    async def add_members(self, conversation_id: str, user_ids: Sequence[str]) -> None:
        rows = [(conversation_id, user_id) for user_id in user_ids]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT OR IGNORE INTO members (conversation_id, user_id) VALUES (?, ?)", rows)

        await self._db.write(run, "add_members")

    async def remove_members(self, conversation_id: str, user_ids: Sequence[str]) -> None:
        rows = [(conversation_id, user_id) for user_id in user_ids]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM members WHERE conversation_id = ? AND user_id = ?", rows)

        await self._db.write(run, "remove_members")

    async def members(self, conversation_id: str) -> list[UserId]:
        def run(conn: sqlite3.Connection) -> list[UserId]:
            rows = conn.execute(
                "SELECT user_id FROM members WHERE conversation_id = ? ORDER BY user_id", (conversation_id,)
            )
            return [UserId(user_id) for (user_id,) in rows]

        return await self._db.read(run, "members")

    async def conversations_of(self, user_id: str) -> list[ConversationId]:
        def run(conn: sqlite3.Connection) -> list[ConversationId]:
            rows = conn.execute(
                "SELECT conversation_id FROM members WHERE user_id = ? ORDER BY conversation_id", (user_id,)
            )
            return [ConversationId(conversation_id) for (conversation_id,) in rows]

        return await self._db.read(run, "conversations_of")
