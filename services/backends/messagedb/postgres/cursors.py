"""The `cursors` table: a batch of held ranges applied in order, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from services.common.model import Cursor

from ..ports import CursorUpdate
from ._rows import Connect

__all__ = ["PostgresCursors"]

# One row per update, applied in order (one statement, executemany, one transaction): each
# column moves to max(current, given) only when the cursor already reaches the range's start
# (after_*), so it never jumps over a gap, nor back.
_ADVANCE_CURSOR = """
INSERT INTO cursors (user_id, device_id, conversation_id, seq, event_id)
VALUES ($1, $2, $3, CASE WHEN $5::bigint <= 0 THEN $4::bigint ELSE 0 END,
        CASE WHEN $7::bigint <= 0 THEN $6::bigint ELSE 0 END)
ON CONFLICT (user_id, device_id, conversation_id) DO UPDATE SET
    seq = CASE WHEN cursors.seq >= $5::bigint THEN GREATEST(cursors.seq, $4::bigint) ELSE cursors.seq END,
    event_id = CASE WHEN cursors.event_id >= $7::bigint THEN GREATEST(cursors.event_id, $6::bigint)
                    ELSE cursors.event_id END
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
            async with conn.transaction():
                await conn.executemany(_ADVANCE_CURSOR, [
                    (u.user_id, u.device_id, u.conversation_id, u.seq, u.after_seq, u.event_id, u.after_event_id)
                    for u in updates])
