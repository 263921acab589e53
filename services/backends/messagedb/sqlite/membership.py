"""The `members` table on SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from services.backends.embedded._sqlite import SMALL_WRITE_ROWS, SQLiteThreads
from services.common.ids import ConversationId, UserId

from ..ports import GroupMember, GroupRecord

__all__ = ["SQLiteGroups", "SQLiteMembership"]


class SQLiteMembership:
    _db: SQLiteThreads

    async def add_members(self, conversation_id: str, user_ids: Sequence[str], *, role: str = "member",
                          visible_after_seq: int = 0, visible_after_event: int = 0, joined_at: int = 0) -> None:
        rows = [(conversation_id, user_id, role, visible_after_seq, visible_after_event, joined_at)
                for user_id in user_ids]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR IGNORE INTO members (conversation_id, user_id, role, visible_after_seq, "
                "visible_after_event, joined_at) VALUES (?, ?, ?, ?, ?, ?)", rows)

        await self._db.write(run, "add_members")

    async def add_members_many(self, entries: Sequence[tuple[str, Sequence[str]]]) -> None:
        rows = [(conversation_id, user_id) for conversation_id, user_ids in entries for user_id in user_ids]
        if not rows:
            return

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR IGNORE INTO members (conversation_id, user_id, role, visible_after_seq, "
                "visible_after_event, joined_at) VALUES (?, ?, 'member', 0, 0, 0)", rows)

        await self._db.write(run, "add_members_many", small=len(rows) <= SMALL_WRITE_ROWS)

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


class SQLiteGroups:
    """The `groups` table, and the role/visibility columns of `members`."""

    _db: SQLiteThreads

    async def create_group(self, group: GroupRecord) -> bool:
        def run(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "INSERT OR IGNORE INTO groups (conversation_id, join_policy, history, created_at) VALUES (?, ?, ?, ?)",
                (group.conversation_id, group.join_policy, group.history, group.created_at)).rowcount

        return await self._db.write(run, "create_group") == 1

    async def get_group(self, conversation_id: str) -> GroupRecord | None:
        def run(conn: sqlite3.Connection) -> GroupRecord | None:
            row = conn.execute("SELECT conversation_id, join_policy, history, created_at FROM groups "
                               "WHERE conversation_id = ?", (conversation_id,)).fetchone()
            return None if row is None else GroupRecord(ConversationId(row[0]), row[1], row[2], row[3])

        return await self._db.read(run, "get_group")

    async def group_members(self, conversation_id: str) -> list[GroupMember]:
        def run(conn: sqlite3.Connection) -> list[GroupMember]:
            rows = conn.execute(
                "SELECT user_id, role, visible_after_seq, visible_after_event, joined_at FROM members "
                "WHERE conversation_id = ? ORDER BY joined_at, user_id", (conversation_id,))
            return [GroupMember(UserId(u), role, seq, event, at) for u, role, seq, event, at in rows]

        return await self._db.read(run, "group_members")

    async def set_member_role(self, conversation_id: str, user_id: str, role: str) -> bool:
        def run(conn: sqlite3.Connection) -> int:
            return conn.execute("UPDATE members SET role = ? WHERE conversation_id = ? AND user_id = ?",
                                (role, conversation_id, user_id)).rowcount

        return await self._db.write(run, "set_member_role") == 1
