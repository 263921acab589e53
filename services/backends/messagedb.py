"""The MessageDB port: messages (L1), conversation events, device cursors, membership.

Adapters: `sqlite:///PATH` (embedded, WAL) and `postgresql://…` (asyncpg; TimescaleDB
hypertables when the extension exists, native time partitions otherwise).
Contract suite: tests/contract/test_messagedb.py.

Guards the adapters enforce (the store relies on them, ARCHITECTURE §6):
  * msg_id is unique; (conversation_id, seq) is unique; (sender_id, client_msg_id) is unique.
  * inserting a msg_id that is already stored is a no-op: the stored row keeps its seq.
The store consumer is the only writer of seq; it asks `find_existing` before it allocates
seqs, so a duplicate never consumes a seq.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import ConversationEvent, Cursor, Message

__all__ = ["CursorUpdate", "GroupMember", "GroupRecord", "MessageDB"]


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
class MessageDB(Protocol):
    async def start(self) -> None:
        """Connect (and create the database file/schema container if needed)."""

    async def close(self) -> None: ...

    async def migrate(self) -> list[str]:
        """Apply pending migrations in order; return the names applied (idempotent)."""

    async def applied_migrations(self) -> list[str]: ...

    # -- messages --------------------------------------------------------------
    async def insert_messages(self, messages: Sequence[Message]) -> None:
        """Store messages that already carry their seq, in one transaction.
        A msg_id already stored is skipped. Raise Conflict if a (conversation_id, seq)
        or (sender_id, client_msg_id) is taken by a different msg_id."""

    async def find_existing(self, messages: Sequence[Message]) -> dict[int, Message]:
        """For each given message, the stored one with the same msg_id or the same
        (sender_id, client_msg_id); keyed by the GIVEN message's msg_id."""

    async def max_seqs(self, conversation_ids: Sequence[str]) -> dict[str, int]:
        """Highest stored seq per conversation; 0 for a conversation with none."""

    async def get_message(self, msg_id: int) -> Message | None: ...

    async def messages_after(self, conversation_id: str, after_seq: int, *, limit: int = 200) -> list[Message]:
        """Messages with seq > after_seq, ascending, at most limit."""

    async def set_flags(self, msg_id: int, flags: int) -> None: ...

    async def count_messages(self, conversation_id: str | None = None) -> int: ...

    # -- events (recall, delete, read, update) -----------------------------------
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

    # -- cursors -----------------------------------------------------------------
    async def get_cursors(self, user_id: str, device_id: str) -> dict[str, Cursor]: ...

    async def advance_cursors(self, updates: Sequence[CursorUpdate]) -> None:
        """Apply the updates in order, in one transaction. For seq and event_id separately:
        if current >= after_*, the cursor becomes max(current, given); otherwise it stays
        (a missing cursor is 0). A cursor never moves back, nor over a gap."""

    # -- membership ----------------------------------------------------------------
    async def add_members(self, conversation_id: str, user_ids: Sequence[str], *, role: str = "member",
                          visible_after_seq: int = 0, visible_after_event: int = 0, joined_at: int = 0) -> None:
        """Add members (role and visibility for group members); an existing member is kept as is."""

    async def remove_members(self, conversation_id: str, user_ids: Sequence[str]) -> None: ...

    async def members(self, conversation_id: str) -> list[UserId]:
        """Sorted."""

    async def conversations_of(self, user_id: str) -> list[ConversationId]:
        """Sorted."""

    # -- groups --------------------------------------------------------------------
    async def create_group(self, group: GroupRecord) -> bool:
        """Record a new group; False if the id is taken (it is never freed)."""

    async def get_group(self, conversation_id: str) -> GroupRecord | None: ...

    async def group_members(self, conversation_id: str) -> list[GroupMember]:
        """Ordered by joined_at, then user_id."""

    async def set_member_role(self, conversation_id: str, user_id: str, role: str) -> bool:
        """False if user_id is not a member."""
