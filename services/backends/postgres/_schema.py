"""Schema of the PostgreSQL MessageDB: migrations and time partitions of `messages`.

`messages` is split by `created_at`: a TimescaleDB hypertable when the extension is
available, otherwise native range partitions, one per month, created a few months ahead,
plus a default partition for anything outside them. A unique index on a partitioned
table (or a hypertable) must contain the partition column, so the guards the store
relies on — unique msg_id, (conversation_id, seq), (sender_id, client_msg_id) — live in
the small unpartitioned `message_keys` table, written in the same transaction as the
row. It also answers max seq and point lookups without touching every partition.

Append migrations; never edit an applied one (its name is recorded in schema_migrations).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import asyncpg

__all__ = ["MIGRATIONS", "MIGRATION_LOCK", "ensure_partitions", "storage_mode", "month_start"]

MIGRATION_LOCK = 0x464C4152450001  # pg_advisory_lock key: one migrator/partitioner at a time
PARTITION_MONTHS_AHEAD = 3

Migration = Callable[[asyncpg.Connection], Awaitable[None]]


async def _has_timescaledb(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"))


async def _0001_messages(conn: asyncpg.Connection) -> None:
    await conn.execute("""
        CREATE TABLE messagedb_meta (key text PRIMARY KEY, value text NOT NULL);

        CREATE TABLE message_keys (
            msg_id          bigint      PRIMARY KEY,
            conversation_id text        NOT NULL,
            seq             bigint      NOT NULL,
            sender_id       text        NOT NULL,
            client_msg_id   text        NOT NULL,
            created_at      timestamptz NOT NULL,  -- locates the row's partition
            CONSTRAINT message_keys_conversation_seq UNIQUE (conversation_id, seq),
            CONSTRAINT message_keys_sender_client_msg UNIQUE (sender_id, client_msg_id)
        );
    """)
    columns = """
            msg_id          bigint      NOT NULL,
            conversation_id text        NOT NULL,
            seq             bigint      NOT NULL,
            sender_id       text        NOT NULL,
            sender_device   text        NOT NULL,
            client_msg_id   text        NOT NULL,
            content_type    text        NOT NULL,
            body            json        NOT NULL,  -- json, not jsonb: kept as written (\\u0000 included)
            created_at      timestamptz NOT NULL,
            flags           integer     NOT NULL DEFAULT 0
    """
    if await _has_timescaledb(conn):
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        await conn.execute(f"CREATE TABLE messages ({columns})")
        await conn.execute(
            "SELECT create_hypertable('messages', 'created_at', chunk_time_interval => interval '7 days')")
        mode = "timescaledb"
    else:
        await conn.execute(f"CREATE TABLE messages ({columns}) PARTITION BY RANGE (created_at)")
        await conn.execute("CREATE TABLE messages_default PARTITION OF messages DEFAULT")
        mode = "native-partitions"
    await conn.execute("""
        CREATE INDEX messages_conversation_seq ON messages (conversation_id, seq);
        CREATE INDEX messages_created_conversation ON messages (created_at, conversation_id);
        CREATE INDEX messages_sender_created ON messages (sender_id, created_at);
        CREATE INDEX messages_msg_id ON messages (msg_id);
    """)
    await conn.execute("INSERT INTO messagedb_meta (key, value) VALUES ('storage_mode', $1)", mode)


async def _0002_events_cursors_members(conn: asyncpg.Connection) -> None:
    await conn.execute("""
        CREATE TABLE event_counters (
            conversation_id text   PRIMARY KEY,
            last_event_id   bigint NOT NULL
        );
        CREATE TABLE events (
            conversation_id text    NOT NULL,
            event_id        bigint  NOT NULL,  -- 1, 2, … per conversation
            sync_type       text    NOT NULL,
            msg_id          bigint  NOT NULL,
            seq             bigint  NOT NULL,
            actor_id        text    NOT NULL,
            timestamp       bigint  NOT NULL,  -- ms since the Unix epoch
            for_user        text,              -- NULL: visible to every member
            payload         json    NOT NULL,
            PRIMARY KEY (conversation_id, event_id)
        );
        CREATE TABLE cursors (
            user_id         text   NOT NULL,
            device_id       text   NOT NULL,
            conversation_id text   NOT NULL,
            seq             bigint NOT NULL DEFAULT 0,
            event_id        bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (user_id, device_id, conversation_id)
        );
        CREATE TABLE members (
            conversation_id text NOT NULL,
            user_id         text NOT NULL,
            PRIMARY KEY (conversation_id, user_id)
        );
        CREATE INDEX members_user ON members (user_id, conversation_id);
    """)


async def _0003_groups(conn: asyncpg.Connection) -> None:
    await conn.execute("""
        CREATE TABLE groups (
            conversation_id text   PRIMARY KEY,
            join_policy     text   NOT NULL,  -- invite | open
            history         text   NOT NULL,  -- joined | shared
            created_at      bigint NOT NULL
        );
        ALTER TABLE members ADD COLUMN role text NOT NULL DEFAULT 'member';
        ALTER TABLE members ADD COLUMN visible_after_seq bigint NOT NULL DEFAULT 0;
        ALTER TABLE members ADD COLUMN visible_after_event bigint NOT NULL DEFAULT 0;
        ALTER TABLE members ADD COLUMN joined_at bigint NOT NULL DEFAULT 0;
        -- Groups made before roles existed: invite-only, shared history, every member an admin.
        INSERT INTO groups (conversation_id, join_policy, history, created_at)
            SELECT DISTINCT conversation_id, 'invite', 'shared', 0 FROM members WHERE conversation_id LIKE 'group:%';
        UPDATE members SET role = 'admin' WHERE conversation_id LIKE 'group:%';
    """)


MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_messages", _0001_messages),
    ("0002_events_cursors_members", _0002_events_cursors_members),
    ("0003_groups", _0003_groups),
]


# -- native partitions -----------------------------------------------------------------------

def month_start(moment: datetime, offset: int = 0) -> datetime:
    index = moment.year * 12 + (moment.month - 1) + offset
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


async def storage_mode(conn: asyncpg.Connection) -> str | None:
    if await conn.fetchval("SELECT to_regclass('messagedb_meta')") is None:
        return None
    return await conn.fetchval("SELECT value FROM messagedb_meta WHERE key = 'storage_mode'")


async def ensure_partitions(conn: asyncpg.Connection, *, now: datetime | None = None,
                            months_ahead: int = PARTITION_MONTHS_AHEAD) -> list[str]:
    """Create the monthly partitions from last month to `months_ahead` ahead; return the new ones.

    A new partition is built beside the table, filled with whatever rows of its month had
    landed in the default partition, and attached: that works whether or not the default
    partition holds rows of that month (a plain CREATE … PARTITION OF would fail then).
    Callers hold MIGRATION_LOCK.
    """
    if await storage_mode(conn) != "native-partitions":
        return []
    now = now or datetime.now(UTC)
    created = []
    for offset in range(-1, months_ahead + 1):
        low, high = month_start(now, offset), month_start(now, offset + 1)
        name = f"messages_p{low:%Y%m}"
        if await conn.fetchval("SELECT to_regclass($1)", name) is not None:
            continue
        async with conn.transaction():
            await conn.execute("LOCK TABLE messages_default IN ACCESS EXCLUSIVE MODE")
            await conn.execute(f"CREATE TABLE {name} (LIKE messages INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            moved = f"created_at >= '{low.isoformat()}' AND created_at < '{high.isoformat()}'"
            await conn.execute(f"INSERT INTO {name} SELECT * FROM messages_default WHERE {moved}")
            await conn.execute(f"DELETE FROM messages_default WHERE {moved}")
            await conn.execute(
                f"ALTER TABLE messages ATTACH PARTITION {name} "
                f"FOR VALUES FROM ('{low.isoformat()}') TO ('{high.isoformat()}')")
        created.append(name)
    return created
