"""Time partitions of the PostgreSQL `messages` table (native-partitions mode).

`messages` is split by `created_at` (migrations/postgres/V001): a TimescaleDB hypertable,
which manages its own chunks, or native range partitions, one per month, which this module
keeps a few months ahead of the clock on every start and after every migration.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

__all__ = ["MIGRATION_LOCK", "PARTITION_MONTHS_AHEAD", "ensure_partitions", "storage_mode", "month_start"]

MIGRATION_LOCK = 0x464C4152450001  # advisory lock key: one migrator/partitioner at a time
PARTITION_MONTHS_AHEAD = 3


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
