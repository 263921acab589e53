"""The MessageDB port (ports.py), its migrations (migrations/, migrator.py) and adapters
(sqlite/, postgres/, imported lazily through services.backends.registry)."""

from __future__ import annotations

from .ports import (
    ArchiveChunk,
    ArchivedRange,
    ArchiveStore,
    CursorBeyondMax,
    CursorStore,
    CursorUpdate,
    DatabaseCreator,
    EventStore,
    GroupMember,
    GroupRecord,
    GroupStore,
    Lifecycle,
    MembershipStore,
    MessageDB,
    MessageReader,
    MessageStore,
    SchemaStore,
    IntegrityStore,
    StoredKey,
)

__all__ = [
    "ArchiveChunk",
    "ArchivedRange",
    "ArchiveStore",
    "CursorBeyondMax",
    "CursorStore",
    "CursorUpdate",
    "DatabaseCreator",
    "EventStore",
    "GroupMember",
    "GroupRecord",
    "GroupStore",
    "Lifecycle",
    "MembershipStore",
    "MessageDB",
    "MessageReader",
    "MessageStore",
    "SchemaStore",
    "IntegrityStore",
    "StoredKey",
]
