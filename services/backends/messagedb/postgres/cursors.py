"""The `cursors` table: one unnest statement per batch of updates."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.model import Cursor

from ..ports import CursorUpdate
from ._rows import Connect

__all__ = ["PostgresCursors"]

_ADVANCE_CURSORS = """
INSERT INTO cursors (user_id, device_id, conversation_id, seq, event_id)
SELECT user_id, device_id, conversation_id, max(seq), max(event_id)
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
     AS u(user_id, device_id, conversation_id, seq, event_id)
GROUP BY user_id, device_id, conversation_id
ON CONFLICT (user_id, device_id, conversation_id) DO UPDATE SET
    seq = GREATEST(cursors.seq, excluded.seq),
    event_id = GREATEST(cursors.event_id, excluded.event_id)
"""


class PostgresCursors:
    _conn: Connect

    async def get_cursors(self, user_id: str, device_id: str) -> dict[str, Cursor]:
        async with self._conn("read cursors") as conn:
            rows = await conn.fetch(
                "SELECT conversation_id, seq, event_id FROM cursors WHERE user_id = $1 AND device_id = $2",
                user_id, device_id)
        return {row["conversation_id"]: Cursor(row["seq"], row["event_id"]) for row in rows}

    async def advance_cursors(self, updates: Sequence[CursorUpdate]) -> None:
        if not updates:
            return
        async with self._conn("advance cursors") as conn:
            await conn.execute(
                _ADVANCE_CURSORS, [u.user_id for u in updates], [u.device_id for u in updates],
                [u.conversation_id for u in updates], [u.seq for u in updates], [u.event_id for u in updates])
