"""The `messages` table on SQLite. Uniqueness guards live in the schema
(migrations/sqlite/V001); this module only turns their violations into Conflict."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

from services.backends.embedded._sqlite import SMALL_WRITE_ROWS, SQLiteThreads
from services.common import codec
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message

__all__ = ["SQLiteMessages", "MESSAGE_COLUMNS", "row_to_message", "chunks"]

MESSAGE_COLUMNS = (
    "msg_id, conversation_id, seq, sender_id, sender_device, client_msg_id, content_type, body, created_at, flags"
)
_CHUNK = 500  # bound on host parameters per IN (...) list
_INLINE_KEYS = 256  # index searches few enough to run on the loop (SQLiteThreads.read_small)


def row_to_message(row: tuple) -> Message:
    msg_id, conversation_id, seq, sender_id, sender_device, client_msg_id, content_type, body, created_at, flags = row
    return Message(
        msg_id=msg_id, client_msg_id=client_msg_id, conversation_id=ConversationId(conversation_id),
        sender_id=UserId(sender_id), sender_device=DeviceId(sender_device), content_type=content_type,
        body=codec.loads(body), created_at=created_at, seq=seq, flags=flags,
    )


def message_row(m: Message) -> tuple:
    return (m.msg_id, m.conversation_id, m.seq, m.sender_id, m.sender_device, m.client_msg_id,
            m.content_type, codec.dumps_str(m.body), m.created_at, m.flags)


def chunks(items: Sequence, size: int = _CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _keys(messages: Sequence[Message]) -> list[tuple[int, str, str]]:
    return [(m.msg_id, m.sender_id, m.client_msg_id) for m in messages]


def _matching_rows(conn: sqlite3.Connection, table: str, columns: str, keys: Sequence[tuple[int, str, str]],
                   ) -> tuple[dict[int, tuple], dict[tuple[str, str], tuple]]:
    """The `columns` (msg_id first) of the rows of `table` whose msg_id, or whose
    (sender_id, client_msg_id), is among `keys`: by msg_id and by (sender_id, client_msg_id).

    Two statements per chunk, not one per message: in a worker thread every execute gives
    the GIL back and waits to take it again from the busy loop."""
    selected = ", ".join(f"t.{column.strip()}" for column in columns.split(","))
    by_id: dict[int, tuple] = {}
    by_key: dict[tuple[str, str], tuple] = {}
    for chunk in chunks(keys, _CHUNK // 2):
        for row in conn.execute(f"SELECT {selected} FROM {table} t WHERE t.msg_id IN ({','.join('?' * len(chunk))})",
                                [msg_id for msg_id, _, _ in chunk]):
            by_id[row[0]] = row
        # CROSS JOIN keeps the key list outside, so each key is an index search
        # (a row-value IN (VALUES ...) was planned as a scan of the whole index).
        pairs = ",".join("(?, ?)" for _ in chunk)
        for sender_id, client_msg_id, *row in conn.execute(
            f"WITH k(sender_id, client_msg_id) AS (VALUES {pairs}) SELECT t.sender_id, t.client_msg_id, {selected} "
            f"FROM k CROSS JOIN {table} t ON t.sender_id = k.sender_id AND t.client_msg_id = k.client_msg_id",
            [v for _, sender_id, client_msg_id in chunk for v in (sender_id, client_msg_id)],
        ):
            by_key.setdefault((sender_id, client_msg_id), tuple(row))
    return by_id, by_key


def _preferring_id(keys: Sequence[tuple[int, str, str]], by_id: dict[int, tuple],
                   by_key: dict[tuple[str, str], tuple]) -> Iterator[tuple[int, tuple]]:
    """(given msg_id, the row found for it), a msg_id match before a (sender, client_msg_id)
    one: that is the row a retried insert would keep."""
    for msg_id, sender_id, client_msg_id in keys:
        row = by_id.get(msg_id) or by_key.get((sender_id, client_msg_id))
        if row is not None:
            yield msg_id, row


# Where a key was found, best first: its msg_id (in L1 or archived), its (sender_id,
# client_msg_id) in L1, that pair among the archived keys. The order a retried insert keeps.
_FOUND_IDS = (
    "WITH k(i, msg_id, sender_id, client_msg_id) AS (VALUES {values}) "
    "SELECT k.i, 0, t.msg_id FROM k CROSS JOIN messages t ON t.msg_id = k.msg_id "
    "UNION ALL SELECT k.i, 1, t.msg_id FROM k CROSS JOIN messages t "
    "ON t.sender_id = k.sender_id AND t.client_msg_id = k.client_msg_id "
    "UNION ALL SELECT k.i, 0, a.msg_id FROM k CROSS JOIN archived_keys a ON a.msg_id = k.msg_id "
    "UNION ALL SELECT k.i, 2, a.msg_id FROM k CROSS JOIN archived_keys a "
    "ON a.sender_id = k.sender_id AND a.client_msg_id = k.client_msg_id"
)


def _found_ids(conn: sqlite3.Connection, keys: Sequence[tuple[int, str, str]]) -> dict[int, int]:
    """given msg_id -> the msg_id the MessageDB holds that message under, for the keys found.

    One statement per chunk for both tables and both lookups: this runs on the loop for
    every new send, and four statements cost twice what one does (55 against 27 us for one
    key; CROSS JOIN keeps the key list outside, so each key is an index search)."""
    found: dict[int, int] = {}
    for chunk in chunks(keys, _CHUNK // 4):
        best: dict[int, tuple[int, int]] = {}
        sql = _FOUND_IDS.format(values=",".join("(?, ?, ?, ?)" for _ in chunk))
        params = [v for i, (msg_id, sender_id, client_msg_id) in enumerate(chunk)
                  for v in (i, msg_id, sender_id, client_msg_id)]
        for i, rank, msg_id in conn.execute(sql, params):
            if i not in best or rank < best[i][0]:
                best[i] = (rank, msg_id)
        for i, (_, msg_id) in best.items():
            found[chunk[i][0]] = msg_id
    return found


class SQLiteMessages:
    _db: SQLiteThreads

    async def insert_messages(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        for m in messages:
            if m.seq <= 0:
                raise InvalidInput("messages are stored with their seq assigned", msg_id=m.msg_id)
        rows = [message_row(m) for m in messages]

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.executemany(
                    f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (msg_id) DO NOTHING",
                    rows,
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"message uniqueness violated: {exc}", constraint=str(exc)) from exc

        await self._db.write(run, "insert_messages", small=len(rows) <= SMALL_WRITE_ROWS)

    async def find_existing(self, messages: Sequence[Message]) -> dict[int, Message]:
        keys = _keys(messages)

        def run(conn: sqlite3.Connection) -> dict[int, Message]:
            by_id, by_key = _matching_rows(conn, "messages", MESSAGE_COLUMNS, keys)
            return {given: row_to_message(row) for given, row in _preferring_id(keys, by_id, by_key)}

        small = len(keys) <= _INLINE_KEYS  # the reserve path's batches, most persist batches
        return await (self._db.read_small if small else self._db.read)(run, "find_existing")

    async def find_msg_ids(self, messages: Sequence[Message]) -> dict[int, int]:
        keys = _keys(messages)
        read = self._db.read_small if len(keys) <= _INLINE_KEYS else self._db.read
        return await read(lambda conn: _found_ids(conn, keys), "find_msg_ids")

    async def max_seqs(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        ids = list(dict.fromkeys(conversation_ids))

        def run(conn: sqlite3.Connection) -> dict[str, int]:
            out = dict.fromkeys(ids, 0)
            for chunk in chunks(ids):
                marks = ",".join("?" * len(chunk))
                # Archived messages keep their keys: a seq once used is never handed out again.
                for conversation_id, seq in conn.execute(
                    f"SELECT conversation_id, MAX(seq) FROM (SELECT conversation_id, seq FROM messages "
                    f"WHERE conversation_id IN ({marks}) UNION ALL SELECT conversation_id, seq FROM archived_keys "
                    f"WHERE conversation_id IN ({marks})) GROUP BY conversation_id",
                    [*chunk, *chunk],
                ):
                    out[conversation_id] = seq
            return out

        return await (self._db.read_small if len(ids) <= _INLINE_KEYS else self._db.read)(run, "max_seqs")

    async def get_message(self, msg_id: int) -> Message | None:
        def run(conn: sqlite3.Connection) -> Message | None:
            row = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE msg_id = ?", (msg_id,)).fetchone()
            return None if row is None else row_to_message(row)

        return await self._db.read(run, "get_message")

    async def messages_after(self, conversation_id: str, after_seq: int, *, limit: int = 200) -> list[Message]:
        def run(conn: sqlite3.Connection) -> list[Message]:
            rows = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (conversation_id, after_seq, limit),
            ).fetchall()
            return [row_to_message(row) for row in rows]

        return await self._db.read(run, "messages_after")

    async def set_flags(self, msg_id: int, flags: int) -> None:
        def run(conn: sqlite3.Connection) -> int:
            return conn.execute("UPDATE messages SET flags = ? WHERE msg_id = ?", (flags, msg_id)).rowcount

        if await self._db.write(run, "set_flags") == 0:
            raise NotFound(f"no message {msg_id}", msg_id=msg_id)

    async def count_messages(self, conversation_id: str | None = None) -> int:
        def run(conn: sqlite3.Connection) -> int:
            # Archived ones included, as PostgreSQL's count over message_keys does.
            if conversation_id is None:
                return conn.execute("SELECT (SELECT COUNT(*) FROM messages) + (SELECT COUNT(*) FROM archived_keys)"
                                    ).fetchone()[0]
            return conn.execute(
                "SELECT (SELECT COUNT(*) FROM messages WHERE conversation_id = ?) + "
                "(SELECT COUNT(*) FROM archived_keys WHERE conversation_id = ?)", (conversation_id, conversation_id)
            ).fetchone()[0]

        return await self._db.read(run, "count_messages")
