"""The `messages` table (partitioned by created_at) and its guard table `message_keys`.

Batches travel as arrays through `unnest`, so a whole insert or lookup is one statement
and one round trip, whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.common import codec
from services.common.errors import InvalidInput, NotFound
from services.common.model import Message

from ._rows import COLUMNS, M_COLUMNS, Connect, row_to_message, to_time

__all__ = ["PostgresMessages"]

_INSERT_MESSAGES = f"""
WITH given AS (
    SELECT DISTINCT ON (msg_id) *
    FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[],
                $8::text[], $9::timestamptz[], $10::integer[]) WITH ORDINALITY
         AS g(msg_id, conversation_id, seq, sender_id, sender_device, client_msg_id, content_type, body,
              created_at, flags, ord)
    ORDER BY msg_id, ord
), fresh AS (
    INSERT INTO message_keys (msg_id, conversation_id, seq, sender_id, client_msg_id, created_at)
    SELECT msg_id, conversation_id, seq, sender_id, client_msg_id, created_at FROM given ORDER BY ord
    ON CONFLICT (msg_id) DO NOTHING
    RETURNING msg_id
)
INSERT INTO messages ({COLUMNS.replace("body::text", "body")})
SELECT g.msg_id, g.conversation_id, g.seq, g.sender_id, g.sender_device, g.client_msg_id, g.content_type,
       g.body::json, g.created_at, g.flags
FROM given g JOIN fresh USING (msg_id)
"""

# For each given (msg_id, sender_id, client_msg_id): the key row that took its msg_id, else
# the one that took its (sender_id, client_msg_id). message_keys holds the keys of every
# message, in L1 or archived.
_BEST_KEYS = """
WITH q AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY
                  AS q(given, sender_id, client_msg_id, ord)
), hits AS (
    SELECT q.ord, q.given, k.msg_id, k.created_at, 0 AS preference
    FROM q JOIN message_keys k ON k.msg_id = q.given
    UNION ALL
    SELECT q.ord, q.given, k.msg_id, k.created_at, 1
    FROM q JOIN message_keys k ON k.sender_id = q.sender_id AND k.client_msg_id = q.client_msg_id
), best AS (
    SELECT DISTINCT ON (ord) given, msg_id, created_at FROM hits ORDER BY ord, preference
)
"""
_FIND_EXISTING = _BEST_KEYS + f"""
SELECT best.given, {M_COLUMNS}
FROM best JOIN messages m ON m.msg_id = best.msg_id AND m.created_at = best.created_at
"""
_FIND_MSG_IDS = _BEST_KEYS + "SELECT given, msg_id FROM best"


def _key_arrays(messages: Sequence[Message]) -> tuple[list[int], list[str], list[str]]:
    return [m.msg_id for m in messages], [m.sender_id for m in messages], [m.client_msg_id for m in messages]


class PostgresMessages:
    _conn: Connect

    async def insert_messages(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        for m in messages:
            if m.seq <= 0:
                raise InvalidInput("messages are stored with their seq assigned", msg_id=m.msg_id)
        columns = (
            [m.msg_id for m in messages], [m.conversation_id for m in messages], [m.seq for m in messages],
            [m.sender_id for m in messages], [m.sender_device for m in messages],
            [m.client_msg_id for m in messages], [m.content_type for m in messages],
            [codec.dumps_str(m.body) for m in messages], [to_time(m.created_at) for m in messages],
            [m.flags for m in messages],
        )
        async with self._conn("insert messages") as conn:
            await conn.execute(_INSERT_MESSAGES, *columns)

    async def find_existing(self, messages: Sequence[Message]) -> dict[int, Message]:
        if not messages:
            return {}
        async with self._conn("find existing messages") as conn:
            rows = await conn.fetch(_FIND_EXISTING, *_key_arrays(messages))
        return {row["given"]: row_to_message(row) for row in rows}

    async def find_msg_ids(self, messages: Sequence[Message]) -> dict[int, int]:
        if not messages:
            return {}
        async with self._conn("find message ids") as conn:
            rows = await conn.fetch(_FIND_MSG_IDS, *_key_arrays(messages))
        return {row["given"]: row["msg_id"] for row in rows}

    async def max_seqs(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        ids = list(dict.fromkeys(conversation_ids))
        if not ids:
            return {}
        async with self._conn("read max seqs") as conn:
            rows = await conn.fetch(
                "SELECT conversation_id, max(seq) AS seq FROM message_keys WHERE conversation_id = ANY($1::text[]) "
                "GROUP BY conversation_id", ids)
        out = dict.fromkeys(ids, 0)
        out.update({row["conversation_id"]: row["seq"] for row in rows})
        return out

    async def get_message(self, msg_id: int) -> Message | None:
        async with self._conn("read message") as conn:
            row = await conn.fetchrow(
                f"SELECT {M_COLUMNS} FROM message_keys k "
                "JOIN messages m ON m.msg_id = k.msg_id AND m.created_at = k.created_at WHERE k.msg_id = $1", msg_id)
        return None if row is None else row_to_message(row)

    async def messages_after(self, conversation_id: str, after_seq: int, *, limit: int = 200) -> list[Message]:
        async with self._conn("read messages") as conn:
            rows = await conn.fetch(
                f"SELECT {COLUMNS} FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                conversation_id, after_seq, limit)
        return [row_to_message(row) for row in rows]

    async def set_flags(self, msg_id: int, flags: int) -> None:
        async with self._conn("set message flags") as conn:
            status = await conn.execute(
                "UPDATE messages SET flags = $2 WHERE msg_id = $1 "
                "AND created_at = (SELECT created_at FROM message_keys WHERE msg_id = $1)", msg_id, flags)
        if status.endswith(" 0"):
            raise NotFound(f"no message {msg_id}", msg_id=msg_id)

    async def count_messages(self, conversation_id: str | None = None) -> int:
        async with self._conn("count messages") as conn:
            if conversation_id is None:
                return await conn.fetchval("SELECT count(*) FROM message_keys")
            return await conn.fetchval("SELECT count(*) FROM message_keys WHERE conversation_id = $1", conversation_id)
