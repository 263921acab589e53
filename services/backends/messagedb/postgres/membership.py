"""The `members` table."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.ids import ConversationId, UserId

from ..ports import GroupMember, GroupRecord
from ._rows import Connect

__all__ = ["PostgresGroups", "PostgresMembership"]


class PostgresMembership:
    _conn: Connect

    async def add_members(self, conversation_id: str, user_ids: Sequence[str], *, role: str = "member",
                          visible_after_seq: int = 0, visible_after_event: int = 0, joined_at: int = 0) -> None:
        if not user_ids:
            return
        async with self._conn("add members") as conn:
            await conn.execute(
                "INSERT INTO members (conversation_id, user_id, role, visible_after_seq, visible_after_event, joined_at) "
                "SELECT $1, u, $3, $4, $5, $6 FROM unnest($2::text[]) AS u ON CONFLICT DO NOTHING",
                conversation_id, list(user_ids), role, visible_after_seq, visible_after_event, joined_at)

    async def add_members_many(self, entries: Sequence[tuple[str, Sequence[str]]]) -> None:
        pairs = [(conversation_id, user_id) for conversation_id, user_ids in entries for user_id in user_ids]
        if not pairs:
            return
        async with self._conn("add members") as conn:
            await conn.execute(
                "INSERT INTO members (conversation_id, user_id, role, visible_after_seq, visible_after_event, joined_at) "
                "SELECT c, u, 'member', 0, 0, 0 FROM unnest($1::text[], $2::text[]) AS t(c, u) ON CONFLICT DO NOTHING",
                [c for c, _ in pairs], [u for _, u in pairs])

    async def remove_members(self, conversation_id: str, user_ids: Sequence[str]) -> None:
        if not user_ids:
            return
        async with self._conn("remove members") as conn:
            await conn.execute("DELETE FROM members WHERE conversation_id = $1 AND user_id = ANY($2::text[])",
                               conversation_id, list(user_ids))

    async def members(self, conversation_id: str) -> list[UserId]:
        async with self._conn("read members") as conn:
            # COLLATE "C": byte order, the same as Python's sorted() and the SQLite adapter.
            rows = await conn.fetch(
                'SELECT user_id FROM members WHERE conversation_id = $1 ORDER BY user_id COLLATE "C"', conversation_id)
        return [UserId(row["user_id"]) for row in rows]

    async def conversations_of(self, user_id: str) -> list[ConversationId]:
        async with self._conn("read conversations") as conn:
            rows = await conn.fetch(
                'SELECT conversation_id FROM members WHERE user_id = $1 ORDER BY conversation_id COLLATE "C"',
                user_id)
        return [ConversationId(row["conversation_id"]) for row in rows]


class PostgresGroups:
    """The `groups` table, and the role/visibility columns of `members`."""

    _conn: Connect

    async def create_group(self, group: GroupRecord) -> bool:
        async with self._conn("create group") as conn:
            status = await conn.execute(
                "INSERT INTO groups (conversation_id, join_policy, history, created_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT DO NOTHING", group.conversation_id, group.join_policy, group.history, group.created_at)
        return status.endswith(" 1")

    async def get_group(self, conversation_id: str) -> GroupRecord | None:
        async with self._conn("read group") as conn:
            row = await conn.fetchrow("SELECT conversation_id, join_policy, history, created_at FROM groups "
                                      "WHERE conversation_id = $1", conversation_id)
        if row is None:
            return None
        return GroupRecord(ConversationId(row["conversation_id"]), row["join_policy"], row["history"], row["created_at"])

    async def group_members(self, conversation_id: str) -> list[GroupMember]:
        async with self._conn("read group members") as conn:
            rows = await conn.fetch(
                "SELECT user_id, role, visible_after_seq, visible_after_event, joined_at FROM members "
                'WHERE conversation_id = $1 ORDER BY joined_at, user_id COLLATE "C"', conversation_id)
        return [GroupMember(UserId(r["user_id"]), r["role"], r["visible_after_seq"], r["visible_after_event"],
                            r["joined_at"]) for r in rows]

    async def set_member_role(self, conversation_id: str, user_id: str, role: str) -> bool:
        async with self._conn("set member role") as conn:
            status = await conn.execute("UPDATE members SET role = $3 WHERE conversation_id = $1 AND user_id = $2",
                                        conversation_id, user_id, role)
        return status.endswith(" 1")
