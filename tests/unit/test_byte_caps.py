"""Byte caps of in-memory structures: memory:// evicts least recently used strings with a TTL first,
routes (hashes) and keys without a TTL last; the membership cache drops least recently used groups."""

from __future__ import annotations

from services.backends.embedded.memcache import MemoryCache


async def test_byte_cap_evicts_old_strings_and_keeps_routes():
    cache = MemoryCache(max_bytes=1024 * 1024)
    await cache.hset("route:alice", {"phone": b"r" * 200})
    await cache.expire("route:alice", 60)
    await cache.set("config", b"c" * 100)  # no TTL
    for i in range(2000):
        await cache.set(f"msg:c:{i}", b"m" * 2048, ttl=3600)
        if i % 100 == 0:
            assert await cache.get("msg:c:0") is not None  # read often: stays recent
        assert cache.budget.used <= 1024 * 1024
    assert cache.budget.evictions > 1000
    assert await cache.get("msg:c:1") is None  # old and unread: evicted
    assert await cache.get("msg:c:1999") is not None
    assert await cache.get("msg:c:0") is not None
    assert await cache.hget("route:alice", "phone") == b"r" * 200
    assert await cache.get("config") == b"c" * 100


async def test_accounting_follows_updates_and_deletes():
    cache = MemoryCache(max_bytes=10 * 1024 * 1024)
    await cache.set("a", b"x" * 1000, ttl=10)
    await cache.set("a", b"x" * 10)
    await cache.hset("h", {"f": b"y" * 500})
    await cache.hset("h", {"f": b"y" * 5, "g": b"z"})
    await cache.hdel("h", "f")
    await cache.zadd("z", {"m1": 1, "m2": 2})
    await cache.zrem("z", "m1")
    small = cache.budget.used
    assert 0 < small < 1000
    await cache.delete("a", "h", "z")
    assert cache.budget.used == 0


async def test_membership_cache_holds_at_most_its_byte_cap():
    from services.delivery.membership import Membership

    class Groups:
        async def members(self, conversation_id):
            return [f"{conversation_id}-user{i:04d}" for i in range(1000)]

    membership = Membership(Groups(), max_bytes=512 * 1024)  # type: ignore[arg-type]
    for g in range(50):
        assert len(await membership.members(f"group:{g}")) == 1000
        assert membership.budget.used <= 512 * 1024
    assert membership.budget.evictions > 0
    membership.invalidate("group:49")
    assert membership.budget.used < 512 * 1024
