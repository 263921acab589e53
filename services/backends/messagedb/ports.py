"""The MessageDB port, one small Protocol per table or concern.

Callers ask for the narrowest one they need (the sync service reads `MessageReader`,
`EventStore` and `CursorStore`; membership code sees only `MembershipStore`); wiring
that opens the database holds the composite `MessageDB`, which every adapter satisfies.

Adapters: `sqlite:///PATH` (messagedb/sqlite/, WAL) and `postgresql://…`
(messagedb/postgres/, asyncpg; TimescaleDB hypertables when the extension exists, native
month partitions otherwise). Both run the versioned SQL files of messagedb/migrations/.
Contract suite: tests/contract/test_messagedb.py.

Guards the adapters enforce (the store relies on them, ARCHITECTURE §6):
  * msg_id is unique; (conversation_id, seq) is unique; (sender_id, client_msg_id) is unique.
  * inserting a msg_id that is already stored is a no-op: the stored row keeps its seq.
The store consumer is the only writer of seq; it asks `find_existing` before it allocates
seqs, so a duplicate never consumes a seq.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import ConversationEvent, Cursor, Message

__all__ = [
    "CursorUpdate",
    "GroupRecord",
    "GroupMember",
    "Lifecycle",
    "DatabaseCreator",
    "SchemaStore",
    "MessageReader",
    "MessageStore",
    "EventStore",
    "CursorStore",
    "MembershipStore",
    "GroupStore",
    "ArchivedRange",
    "ArchiveChunk",
    "ArchiveStore",
    "StoredKey",
    "CursorBeyondMax",
    "IntegrityStore",
    "MessageDB",
]


@dataclass(frozen=True, slots=True)
class CursorUpdate:
    user_id: UserId
    device_id: DeviceId
    conversation_id: ConversationId
    seq: int = 0
    event_id: int = 0
    # The range (after_seq, seq] is one the device holds: the cursor moves to `seq` only
    # if it is already at after_seq or beyond, so it never jumps over a gap. 0 = no condition.
    after_seq: int = 0
    after_event_id: int = 0


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A group's settings; the row stays after everyone left, so the id is never reused."""

    conversation_id: ConversationId
    join_policy: str  # "invite" | "open"
    history: str  # "joined" | "shared"
    created_at: int  # ms


@dataclass(frozen=True, slots=True)
class GroupMember:
    user_id: UserId
    role: str  # "owner" | "admin" | "member"
    visible_after_seq: int  # the member sees seqs above this (history "joined")
    visible_after_event: int  # and event ids above this
    joined_at: int  # ms; orders "longest-standing"


@runtime_checkable
class Lifecycle(Protocol):
    async def start(self) -> None:
        """Connect (and create the database file if needed). Idempotent."""

    async def close(self) -> None:
        """Idempotent."""


@runtime_checkable
class DatabaseCreator(Protocol):
    async def create_database_if_missing(self) -> bool:
        """Create the database itself (PostgreSQL: CREATE DATABASE through the server's
        `postgres` database; SQLite: the file); True if it was missing. Call before start()."""


@runtime_checkable
class SchemaStore(Protocol):
    """The schema as the services see it. The full migration surface (history, plan, lock,
    down, baseline) is `messagedb.migrator.Migrator`, built on each adapter's history table."""

    async def migrate(self) -> list[str]:
        """Apply pending migrations in order; return the names applied (idempotent).
        Serialised across processes by the adapter's migration lock."""

    async def applied_migrations(self) -> list[str]:
        """Names (`V001__messages`, …) of the migrations in effect, ascending."""


@runtime_checkable
class MessageReader(Protocol):
    async def get_message(self, msg_id: int) -> Message | None: ...

    async def messages_after(self, conversation_id: str, after_seq: int, *, limit: int = 200) -> list[Message]:
        """Messages with seq > after_seq, ascending, at most limit."""

    async def max_seqs(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        """Highest stored seq per conversation; 0 for a conversation with none."""

    async def count_messages(self, conversation_id: str | None = None) -> int:
        """Messages ever stored, archived ones included (their keys stay in L1)."""


@runtime_checkable
class MessageStore(MessageReader, Protocol):
    """The `messages` table (L1)."""

    async def insert_messages(self, messages: Sequence[Message]) -> None:
        """Store messages that already carry their seq, in one transaction.
        A msg_id already stored is skipped. Raise Conflict if a (conversation_id, seq)
        or (sender_id, client_msg_id) is taken by a different msg_id."""

    async def find_existing(self, messages: Sequence[Message]) -> dict[int, Message]:
        """For each given message, the stored one with the same msg_id or the same
        (sender_id, client_msg_id); keyed by the GIVEN message's msg_id. L1 rows only."""

    async def find_msg_ids(self, messages: Sequence[Message]) -> dict[int, int]:
        """For each given message whose msg_id or (sender_id, client_msg_id) is taken, the
        msg_id that took it, in L1 or archived (an archived message's keys stay in L1);
        keyed by the GIVEN message's msg_id, a msg_id match preferred. Duplicate detection
        for a message of any age: find_existing misses an archived one, whose resend would
        then be given a new msg_id and fail the uniqueness guard on every insert."""

    async def set_flags(self, msg_id: int, flags: int) -> None:
        """Raise NotFound for an unknown msg_id."""


@runtime_checkable
class EventStore(Protocol):
    """The `events` table: recall, delete, read, update."""

    async def append_event(self, event: ConversationEvent) -> ConversationEvent:
        """Store the event; return it with its per-conversation event_id (1, 2, …)."""

    async def events_after(
        self, conversation_id: str, after_event_id: int, *, user_id: str, limit: int = 200
    ) -> list[ConversationEvent]:
        """Events with event_id > after_event_id visible to user_id (for_user is None or
        equals user_id), ascending."""

    async def deleted_seqs(self, conversation_id: str, user_id: str, *, from_seq: int, to_seq: int) -> set[int]:
        """Seqs in [from_seq, to_seq] that user_id deleted for themself (delete events)."""

    async def read_position(self, conversation_id: str, user_id: str) -> int:
        """The highest seq of user_id's READ events in the conversation; 0 if none."""

    async def last_event_id(self, conversation_id: str) -> int:
        """The conversation's highest event_id; 0 if none."""


@runtime_checkable
class CursorStore(Protocol):
    """The `cursors` table: how far each device has read each conversation."""

    async def get_cursors(self, user_id: str, device_id: str) -> dict[str, Cursor]: ...

    async def advance_cursors(self, updates: Sequence[CursorUpdate]) -> None:
        """Apply the updates in order, in one transaction. For seq and event_id separately:
        if current >= after_*, the cursor becomes max(current, given); otherwise it stays
        (a missing cursor is 0). A cursor never moves back, nor over a gap."""


@runtime_checkable
class MembershipStore(Protocol):
    """The `members` table."""

    async def add_members(self, conversation_id: str, user_ids: Sequence[str], *, role: str = "member",
                          visible_after_seq: int = 0, visible_after_event: int = 0, joined_at: int = 0) -> None:
        """Idempotent: an existing member is kept as is (role and visibility for group members)."""

    async def add_members_many(self, entries: Sequence[tuple[str, Sequence[str]]]) -> None:
        """(conversation_id, user_ids) pairs added as plain members in one write (the store
        records a batch's new c2c conversations this way, not one write apiece); idempotent
        as add_members."""

    async def remove_members(self, conversation_id: str, user_ids: Sequence[str]) -> None:
        """Unknown members are ignored."""

    async def members(self, conversation_id: str) -> list[UserId]:
        """Sorted (byte order)."""

    async def conversations_of(self, user_id: str) -> list[ConversationId]:
        """Sorted (byte order)."""


@runtime_checkable
class GroupStore(Protocol):
    """The `groups` table and the role/visibility columns of `members`."""

    async def create_group(self, group: GroupRecord) -> bool:
        """Record a new group; False if the id is taken (it is never freed)."""

    async def get_group(self, conversation_id: str) -> GroupRecord | None: ...

    async def group_members(self, conversation_id: str) -> list[GroupMember]:
        """Ordered by joined_at, then user_id."""

    async def set_member_role(self, conversation_id: str, user_id: str, role: str) -> bool:
        """False if user_id is not a member."""


@dataclass(frozen=True, slots=True)
class ArchivedRange:
    """One conversation's rows in one archive chunk (or, from `archivable`, still in L1)."""

    conversation_id: ConversationId
    min_seq: int
    max_seq: int
    row_count: int
    min_created_ms: int
    max_created_ms: int
    chunk_id: str = ""
    body_bytes: int = 0  # `archivable` only: the bodies' size, for estimates


@dataclass(frozen=True, slots=True)
class ArchiveChunk:
    chunk_id: str
    state: str  # pending | archived | restored
    object_key: str
    manifest_key: str
    row_count: int
    codec: str
    before_ms: int
    created_at_ms: int
    sha256: str = ""
    ranges: tuple[ArchivedRange, ...] = ()


@runtime_checkable
class ArchiveStore(Protocol):
    """The L1 side of the L2 archive: picking rows to move, the chunk catalog, and the two
    transactions that move rows out of and back into `messages`. An archived message's keys
    stay in L1, so max_seqs, the uniqueness guards, find_msg_ids and count_messages still
    cover it; get_message, find_existing and messages_after see L1 only
    (services/archive/reader.py adds L2 for sync). The store's consumer and reserve ask
    find_msg_ids, so a resend of an archived message keeps its msg_id and its record read
    again is a duplicate; `flarectl replay` looks at L1 rows only, so keep l1_retention above
    the log's retention (30 days vs 7 by default) for it."""

    def archive_lock(self, *, timeout_s: float) -> AbstractAsyncContextManager[None]:
        """One archiver at a time per database: try-lock with backoff, then raise ArchiveLocked."""

    async def archivable(self, *, before_ms: int, conversation_id: str | None = None) -> list[ArchivedRange]:
        """Per conversation, the L1 rows created before before_ms (ranges, counts, body bytes)."""

    async def archive_batch(self, *, before_ms: int, limit: int, conversation_id: str | None = None) -> list[Message]:
        """Up to limit L1 messages created before before_ms, by (conversation_id, seq)."""

    async def begin_chunk(self, chunk: ArchiveChunk) -> None:
        """Record a chunk as pending (before its object is written), with its ranges."""

    async def finish_chunk(self, chunk_id: str, *, msg_ids: Sequence[int], sha256: str) -> int:
        """In one transaction: remove these messages from L1 (keeping their keys) and mark the
        chunk archived. Returns how many rows left L1 (0 on a rerun that already did it).
        PostgreSQL drops whole month partitions older than the chunk's cutoff instead of
        deleting their rows when every row in them is in this chunk."""

    async def forget_chunk(self, chunk_id: str) -> None:
        """Drop a pending chunk's record (its object never became whole); rows stay in L1."""

    async def archive_chunks(self, *, state: str | None = None, conversation_id: str | None = None) -> list[ArchiveChunk]:
        """Catalog rows, oldest first, each with its ranges."""

    async def archived_ranges(self, conversation_id: str, *, after_seq: int = 0) -> list[ArchivedRange]:
        """The conversation's archived ranges with max_seq > after_seq, by min_seq."""

    async def restore_messages(self, messages: Sequence[Message], *, chunk_id: str) -> int:
        """Put archived messages back into L1 (idempotent) and drop the chunk's ranges that
        cover them; the chunk becomes `restored` when it has no range left. Returns rows added."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A message as one L1 table holds it, for consistency checks."""

    msg_id: int
    conversation_id: ConversationId
    seq: int
    sender_id: UserId
    client_msg_id: str
    created_ms: int
    where: str  # "l1": a row of messages; "key": a guard row (PostgreSQL message_keys, SQLite archived_keys)
    readable: bool = True  # "l1": the stored body parses as JSON


@dataclass(frozen=True, slots=True)
class CursorBeyondMax:
    user_id: UserId
    device_id: DeviceId
    conversation_id: ConversationId
    seq: int
    max_seq: int


@runtime_checkable
class IntegrityStore(Protocol):
    """Raw reads for `flarectl check consistency`: what the tables hold, not what the
    services would make of it (a broken row is reported, never raised)."""

    async def stored_keys(self, *, conversation_id: str | None = None, since_ms: int | None = None) -> list[StoredKey]:
        """Every row of messages ("l1") and every guard row ("key"): PostgreSQL keeps one per
        message in message_keys, SQLite one per archived message in archived_keys."""

    async def cursors_beyond_max(self, *, conversation_id: str | None = None) -> list[CursorBeyondMax]:
        """Device cursors whose seq is past the conversation's highest stored seq."""

    async def member_rows(self, *, conversation_id: str | None = None) -> list[tuple[ConversationId, UserId]]: ...


@runtime_checkable
class MessageDB(Lifecycle, SchemaStore, MessageStore, EventStore, CursorStore, MembershipStore, GroupStore,
                ArchiveStore, IntegrityStore, Protocol):
    """Every concern at once: what wiring opens and hands out by narrower type."""
