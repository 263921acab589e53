"""Production adapters while their server crashes: Flare errors, then service again after a restart.

Each test kills its own private server (never a shared session one).
"""

from __future__ import annotations

import asyncio

import pytest

from services.backends.registry import open_cache, open_log, open_messagedb
from services.common.errors import BackendUnavailable

pytestmark = pytest.mark.servers


async def _eventually(call, *, timeout: float = 30.0):
    """Retry a call until it stops raising BackendUnavailable (the caller's retry loop)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await call()
        except BackendUnavailable:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_redis_cache_across_a_crash(private_server):
    redis = await asyncio.to_thread(private_server, "redis")
    cache = open_cache(redis.url)
    await cache.start()
    try:
        await cache.set("k", b"v")
        await asyncio.to_thread(redis.kill)
        with pytest.raises(BackendUnavailable):
            await cache.get("k")
        await asyncio.to_thread(redis.start)
        await _eventually(lambda: cache.set("k", b"again"))
        assert await cache.get("k") == b"again"
    finally:
        await cache.close()


async def test_postgres_messagedb_across_a_crash(private_server):
    postgres = await asyncio.to_thread(private_server, "postgres")
    db = open_messagedb(postgres.url)
    await db.start()
    try:
        await db.migrate()
        await db.add_members("group:g", ["alice"])
        await asyncio.to_thread(postgres.kill)
        with pytest.raises(BackendUnavailable):
            await db.members("group:g")
        await asyncio.to_thread(postgres.start)
        assert await _eventually(lambda: db.members("group:g")) == ["alice"]
    finally:
        await db.close()


async def test_kafka_log_across_a_crash(private_server):
    kafka = await asyncio.to_thread(private_server, "kafka")
    log = open_log(kafka.url)
    await log.start()
    try:
        await log.create_topic("t", partitions=1)
        first = await log.produce("t", b"before")
        await asyncio.to_thread(kafka.kill)
        await asyncio.to_thread(kafka.start)
        # The idempotent producer reconnects by itself; offsets continue where they were.
        after = await _eventually(lambda: log.produce("t", b"after"), timeout=60)
        assert after.offset == first.offset + 1
        assert await log.end_offsets("t") == {0: 2}
    finally:
        await log.close()
