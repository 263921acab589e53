"""`sqlite:////abs/path.db` — the MessageDB port on SQLite in WAL mode.

Uniqueness guards live in the schema (sqlite_migrations.py) so they hold whoever writes;
the adapter only turns their violations into Conflict. Every write is one transaction on
the single writer thread (see _sqlite.py), so a per-conversation event_id allocated with
MAX()+1 inside it cannot race another writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace

from services.backends.messagedb import CursorUpdate, GroupMember, GroupRecord
from services.common import codec
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import ConversationEvent, Cursor, Message, SyncType, now_ms

from ._sqlite import SQLiteThreads, sqlite_path_from_url
from .sqlite_migrations import MIGRATIONS

__all__ = ["SQLiteMessageDB"]

_MESSAGE_COLUMNS = (
    "msg_id, conversation_id, seq, sender_id, sender_device, client_msg_id, content_type, body, created_at, flags"
)
_CHUNK = 500  # bound on host parameters per IN (...) list


def _row_to_message(row: tuple) -> Message:
    msg_id, conversation_id, seq, sender_id, sender_device, client_msg_id, content_type, body, created_at, flags = row
    return Message(
        msg_id=msg_id, client_msg_id=client_msg_id, conversation_id=ConversationId(conversation_id),
        sender_id=UserId(sender_id), sender_device=DeviceId(sender_device), content_type=content_type,
        body=codec.loads(body), created_at=created_at, seq=seq, flags=flags,
    )


def _row_to_event(row: tuple) -> ConversationEvent:
    conversation_id, event_id, sync_type, msg_id, seq, actor_id, timestamp, for_user, payload = row
    return ConversationEvent(
        conversation_id=ConversationId(conversation_id), sync_type=SyncType(sync_type), msg_id=msg_id, seq=seq,
        actor_id=UserId(actor_id), timestamp=timestamp, for_user=None if for_user is None else UserId(for_user),
        event_id=event_id, payload=codec.loads(payload),
    )


def _chunks(items: Sequence, size: int = _CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SQLiteMessageDB:
    def __init__(self, path) -> None:
        self._db = SQLiteThreads(path, "messagedb")

    @classmethod
    def from_url(cls, url: str) -> SQLiteMessageDB:
        return cls(sqlite_path_from_url(url))

    async def start(self) -> None:
        await self._db.start()

    async def close(self) -> None:
        await self._db.close()

    # -- migrations ------------------------------------------------------------------
    async def migrate(self) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            done = {name for (name,) in conn.execute("SELECT name FROM schema_migrations")}
            applied = []
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                # executescript would commit an open transaction first, so BEGIN/COMMIT live
                # inside the script: the DDL and its bookkeeping row land together or not at all.
                try:
                    conn.executescript(
                        f"BEGIN IMMEDIATE;\n{sql}\n"
                        f"INSERT INTO schema_migrations (name, applied_at) VALUES ('{name}', {now_ms()});\n"
                        "COMMIT;"
                    )
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                applied.append(name)
            return applied

        return await self._db.write_script(run, "migrate")

    async def applied_migrations(self) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'schema_migrations'").fetchone()
            if not exists:
                return []
            return [name for (name,) in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]

        return await self._db.read(run, "applied_migrations")

    # -- messages --------------------------------------------------------------------
    async def insert_messages(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        rows = []
        for m in messages:
            if m.seq <= 0:
                raise InvalidInput("messages are stored with their seq assigned", msg_id=m.msg_id)
            rows.append((
                m.msg_id, m.conversation_id, m.seq, m.sender_id, m.sender_device, m.client_msg_id,
                m.content_type, codec.dumps_str(m.body), m.created_at, m.flags,
            ))

        def run(conn: sqlite3.Connection) -> None:
            try:
                conn.executemany(
                    f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (msg_id) DO NOTHING",
                    rows,
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"message uniqueness violated: {exc}", constraint=str(exc)) from exc

        await self._db.write(run, "insert_messages")

    async def find_existing(self, messages: Sequence[Message]) -> dict[int, Message]:
        keys = [(m.msg_id, m.sender_id, m.client_msg_id) for m in messages]

        def run(conn: sqlite3.Connection) -> dict[int, Message]:
            found: dict[int, Message] = {}
            for msg_id, sender_id, client_msg_id in keys:
                # Prefer the msg_id match: that is the row a retried insert would keep.
                row = conn.execute(
                    f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE msg_id = ? "
                    f"UNION ALL SELECT {_MESSAGE_COLUMNS} FROM messages WHERE sender_id = ? AND client_msg_id = ? "
                    "LIMIT 1",
                    (msg_id, sender_id, client_msg_id),
                ).fetchone()
                if row is not None:
                    found[msg_id] = _row_to_message(row)
            return found

        return await self._db.read(run, "find_existing")

    async def max_seqs(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        ids = list(dict.fromkeys(conversation_ids))

        def run(conn: sqlite3.Connection) -> dict[str, int]:
            out = dict.fromkeys(ids, 0)
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                for conversation_id, seq in conn.execute(
                    f"SELECT conversation_id, MAX(seq) FROM messages WHERE conversation_id IN ({marks}) "
                    "GROUP BY conversation_id",
                    chunk,
                ):
                    out[conversation_id] = seq
            return out

        return await self._db.read(run, "max_seqs")

    async def get_message(self, msg_id: int) -> Message | None:
        def run(conn: sqlite3.Connection) -> Message | None:
            row = conn.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE msg_id = ?", (msg_id,)).fetchone()
            return None if row is None else _row_to_message(row)

        return await self._db.read(run, "get_message")

    async def messages_after(self, conversation_id: str, after_seq: int, *, limit: int = 200) -> list[Message]:
        def run(conn: sqlite3.Connection) -> list[Message]:
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (conversation_id, after_seq, limit),
            ).fetchall()
            return [_row_to_message(row) for row in rows]

        return await self._db.read(run, "messages_after")

    async def set_flags(self, msg_id: int, flags: int) -> None:
        def run(conn: sqlite3.Connection) -> int:
            return conn.execute("UPDATE messages SET flags = ? WHERE msg_id = ?", (flags, msg_id)).rowcount

        if await self._db.write(run, "set_flags") == 0:
            raise NotFound(f"no message {msg_id}", msg_id=msg_id)

    async def count_messages(self, conversation_id: str | None = None) -> int:
        def run(conn: sqlite3.Connection) -> int:
            if conversation_id is None:
                return conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
            return conn.execute(
                "SELECT COUNT(*) FROM messages WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()[0]

        return await self._db.read(run, "count_messages")

    # -- events ------------------------------------------------------------------------
    async def append_event(self, event: ConversationEvent) -> ConversationEvent:
        payload = codec.dumps_str(event.payload)

        def run(conn: sqlite3.Connection) -> int:
            (event_id,) = conn.execute(
                "SELECT COALESCE(MAX(event_id), 0) + 1 FROM events WHERE conversation_id = ?", (event.conversation_id,)
            ).fetchone()
            conn.execute(
                "INSERT INTO events (conversation_id, event_id, sync_type, msg_id, seq, actor_id, timestamp, for_user, payload) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (event.conversation_id, event_id, event.sync_type.value, event.msg_id, event.seq, event.actor_id,
                 event.timestamp, event.for_user, payload),
            )
            return event_id

        return replace(event, event_id=await self._db.write(run, "append_event"))

    async def events_after(
        self, conversation_id: str, after_event_id: int, *, user_id: str, limit: int = 200
    ) -> list[ConversationEvent]:
        def run(conn: sqlite3.Connection) -> list[ConversationEvent]:
            rows = conn.execute(
                "SELECT conversation_id, event_id, sync_type, msg_id, seq, actor_id, timestamp, for_user, payload "
                "FROM events WHERE conversation_id = ? AND event_id > ? AND (for_user IS NULL OR for_user = ?) "
                "ORDER BY event_id LIMIT ?",
                (conversation_id, after_event_id, user_id, limit),
            ).fetchall()
            return [_row_to_event(row) for row in rows]

        return await self._db.read(run, "events_after")

    async def deleted_seqs(self, conversation_id: str, user_id: str, *, from_seq: int, to_seq: int) -> set[int]:
        def run(conn: sqlite3.Connection) -> set[int]:
            rows = conn.execute(
                "SELECT seq FROM events WHERE conversation_id = ? AND for_user = ? AND sync_type = 'delete' "
                "AND seq BETWEEN ? AND ?", (conversation_id, user_id, from_seq, to_seq))
            return {seq for (seq,) in rows}

        return await self._db.read(run, "deleted_seqs")

    async def read_position(self, conversation_id: str, user_id: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM events WHERE conversation_id = ? AND actor_id = ? "
                "AND sync_type = 'read'", (conversation_id, user_id)).fetchone()[0]

        return await self._db.read(run, "read_position")

    async def last_event_id(self, conversation_id: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return conn.execute("SELECT COALESCE(MAX(event_id), 0) FROM events WHERE conversation_id = ?",
                                (conversation_id,)).fetchone()[0]

        return await self._db.read(run, "last_event_id")

    # -- cursors -----------------------------------------------------------------------
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
            # cursor already reaches the range's start, so it never jumps over a gap.
            conn.executemany(
                "INSERT INTO cursors (user_id, device_id, conversation_id, seq, event_id) VALUES "
                "(?1, ?2, ?3, CASE WHEN ?5 <= 0 THEN ?4 ELSE 0 END, CASE WHEN ?7 <= 0 THEN ?6 ELSE 0 END) "
                "ON CONFLICT (user_id, device_id, conversation_id) DO UPDATE SET "
                "seq = CASE WHEN seq >= ?5 THEN max(seq, ?4) ELSE seq END, "
                "event_id = CASE WHEN event_id >= ?7 THEN max(event_id, ?6) ELSE event_id END",
                rows,
            )

        await self._db.write(run, "advance_cursors")

    # -- membership ----------------------------------------------------------------------
    async def add_members(self, conversation_id: str, user_ids: Sequence[str], *, role: str = "member",
                          visible_after_seq: int = 0, visible_after_event: int = 0, joined_at: int = 0) -> None:
        rows = [(conversation_id, user_id, role, visible_after_seq, visible_after_event, joined_at)
                for user_id in user_ids]

        def run(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR IGNORE INTO members (conversation_id, user_id, role, visible_after_seq, "
                "visible_after_event, joined_at) VALUES (?, ?, ?, ?, ?, ?)", rows)

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

    # -- groups --------------------------------------------------------------------------
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
