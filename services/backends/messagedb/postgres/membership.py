"""The `members` table."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.ids import ConversationId, UserId

from ._rows import Connect

__all__ = ["PostgresMembership"]


class PostgresMembership:
    _conn: Connect

    async def add_members(self, conversation_id: str, user_ids: Sequence[str]) -> None:
        if not user_ids:
            return
        async with self._conn("add members") as conn:
            await conn.execute(
                "INSERT INTO members (conversation_id, user_id) SELECT $1, u FROM unnest($2::text[]) AS u "
                "ON CONFLICT DO NOTHING", conversation_id, list(user_ids))

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
