"""Schema migrations of the SQLite MessageDB, applied in order, each in its own transaction.

Append new migrations; never edit an applied one (its name is recorded in schema_migrations).
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_messages",
        """
        CREATE TABLE messages (
            msg_id          INTEGER PRIMARY KEY,
            conversation_id TEXT    NOT NULL,
            seq             INTEGER NOT NULL,
            sender_id       TEXT    NOT NULL,
            sender_device   TEXT    NOT NULL,
            client_msg_id   TEXT    NOT NULL,
            content_type    TEXT    NOT NULL,
            body            TEXT    NOT NULL,  -- JSON
            created_at      INTEGER NOT NULL,  -- ms since the Unix epoch
            flags           INTEGER NOT NULL DEFAULT 0,
            UNIQUE (conversation_id, seq),
            UNIQUE (sender_id, client_msg_id)
        );
        CREATE INDEX messages_created_at ON messages (created_at);
        CREATE INDEX messages_sender_created_at ON messages (sender_id, created_at);
        """,
    ),
    (
        "0002_events_cursors_members",
        """
        CREATE TABLE events (
            conversation_id TEXT    NOT NULL,
            event_id        INTEGER NOT NULL,  -- 1, 2, … per conversation
            sync_type       TEXT    NOT NULL,
            msg_id          INTEGER NOT NULL,
            seq             INTEGER NOT NULL,
            actor_id        TEXT    NOT NULL,
            timestamp       INTEGER NOT NULL,
            for_user        TEXT,              -- NULL: visible to every member
            payload         TEXT    NOT NULL,  -- JSON object
            PRIMARY KEY (conversation_id, event_id)
        ) WITHOUT ROWID;
        CREATE TABLE cursors (
            user_id         TEXT    NOT NULL,
            device_id       TEXT    NOT NULL,
            conversation_id TEXT    NOT NULL,
            seq             INTEGER NOT NULL DEFAULT 0,
            event_id        INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (user_id, device_id, conversation_id)
        ) WITHOUT ROWID;
        CREATE TABLE members (
            conversation_id TEXT NOT NULL,
            user_id         TEXT NOT NULL,
            PRIMARY KEY (conversation_id, user_id)
        ) WITHOUT ROWID;
        CREATE INDEX members_user ON members (user_id, conversation_id);
        """,
    ),
    (
        "0003_groups",
        """
        CREATE TABLE groups (
            conversation_id TEXT    PRIMARY KEY,
            join_policy     TEXT    NOT NULL,  -- invite | open
            history         TEXT    NOT NULL,  -- joined | shared
            created_at      INTEGER NOT NULL
        ) WITHOUT ROWID;
        ALTER TABLE members ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
        ALTER TABLE members ADD COLUMN visible_after_seq INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE members ADD COLUMN visible_after_event INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE members ADD COLUMN joined_at INTEGER NOT NULL DEFAULT 0;
        -- Groups made before roles existed: invite-only, shared history, every member an admin.
        INSERT INTO groups (conversation_id, join_policy, history, created_at)
            SELECT DISTINCT conversation_id, 'invite', 'shared', 0 FROM members WHERE conversation_id LIKE 'group:%';
        UPDATE members SET role = 'admin' WHERE conversation_id LIKE 'group:%';
        """,
    ),
]
