"""Contract for the Cache port (services/backends/cache.py), run against every adapter."""

from __future__ import annotations

import asyncio

import pytest

from services.backends.cache import Cache
from services.common.errors import InvalidInput

TTL = 0.2


async def _eventually_gone(cache: Cache, key: str, *, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while await cache.get(key) is not None:
        assert asyncio.get_running_loop().time() < deadline, f"{key} never expired"
        await asyncio.sleep(0.05)


async def test_is_a_cache(cache):
    assert isinstance(cache, Cache)


async def test_set_get_delete(cache, unique):
    key = f"k:{unique}"
    assert await cache.get(key) is None
    await cache.set(key, b"v1")
    assert await cache.get(key) == b"v1"
    await cache.set(key, b"v2")
    assert await cache.get(key) == b"v2"
    assert await cache.delete(key, f"missing:{unique}") == 1
    assert await cache.get(key) is None
    assert await cache.delete(key) == 0


async def test_set_nx(cache, unique):
    key = f"nx:{unique}"
    assert await cache.set_nx(key, b"first") is True
    assert await cache.set_nx(key, b"second") is False
    assert await cache.get(key) == b"first"


async def test_set_nx_many_sets_only_the_absent_keys_in_order(cache, unique):
    keys = [f"nxm{i}:{unique}" for i in range(4)]
    assert await cache.set_nx(keys[1], b"earlier") is True
    assert await cache.set_nx_many(keys, b"marker", ttl=30) == [True, False, True, True]
    assert await cache.get_many(keys) == [b"marker", b"earlier", b"marker", b"marker"]
    assert await cache.set_nx_many(keys, b"again") == [False] * 4
    remaining = await cache.ttl(keys[0])
    assert remaining is not None and 0 < remaining <= 30
    assert await cache.set_nx_many([], b"x") == []


async def test_set_nx_many_keys_expire(cache, unique):
    keys = [f"nxmttl{i}:{unique}" for i in range(2)]
    assert await cache.set_nx_many(keys, b"a", ttl=TTL) == [True, True]
    await _eventually_gone(cache, keys[0])
    await _eventually_gone(cache, keys[1])
    assert await cache.set_nx_many(keys, b"b") == [True, True]


async def test_many(cache, unique):
    items = {f"m{i}:{unique}": str(i).encode() for i in range(5)}
    await cache.set_many(items)
    keys = list(items) + [f"absent:{unique}"]
    assert await cache.get_many(keys) == list(items.values()) + [None]
    assert await cache.get_many([]) == []


async def test_incr(cache, unique):
    key = f"ctr:{unique}"
    assert await cache.incr(key) == 1
    assert await cache.incr(key, 5) == 6
    assert await cache.incr(key, -2) == 4
    assert await cache.get(key) == b"4"


async def test_ttl_expiry(cache, unique):
    key = f"ttl:{unique}"
    await cache.set(key, b"v", ttl=TTL)
    remaining = await cache.ttl(key)
    assert remaining is not None and 0 < remaining <= TTL
    await _eventually_gone(cache, key)
    assert await cache.ttl(key) is None
    assert await cache.delete(key) == 0


async def test_set_nx_after_expiry(cache, unique):
    key = f"nxttl:{unique}"
    assert await cache.set_nx(key, b"a", ttl=TTL)
    await _eventually_gone(cache, key)
    assert await cache.set_nx(key, b"b") is True
    assert await cache.get(key) == b"b"


async def test_expire_and_ttl(cache, unique):
    key = f"exp:{unique}"
    assert await cache.expire(key, 10) is False  # absent
    await cache.set(key, b"v")
    assert await cache.ttl(key) is None  # no TTL
    assert await cache.expire(key, 10) is True
    remaining = await cache.ttl(key)
    assert remaining is not None and 5 < remaining <= 10
    await cache.set(key, b"w")  # a plain set clears the TTL, as in Redis
    assert await cache.ttl(key) is None
    await cache.expire(key, TTL)
    await _eventually_gone(cache, key)


async def test_set_many_ttl(cache, unique):
    # Long enough to read every value back under load, short enough to watch it expire.
    ttl = 1.0
    items = {f"sm{i}:{unique}": f"value-{i}".encode() for i in range(3)}
    await cache.set_many(items, ttl=ttl)
    assert await cache.get_many(list(items)) == list(items.values())  # written, before expiry
    for key in items:
        remaining = await cache.ttl(key)
        assert remaining is not None and 0 < remaining <= ttl, (key, remaining)
    for key in items:
        await _eventually_gone(cache, key)
    assert await cache.get_many(list(items)) == [None, None, None]


async def test_hashes(cache, unique):
    key = f"h:{unique}"
    assert await cache.hgetall(key) == {}
    assert await cache.hget(key, "a") is None
    await cache.hset(key, {"a": b"1", "b": b"2"})
    await cache.hset(key, {"b": b"3", "c": b"4"})
    assert await cache.hget(key, "b") == b"3"
    assert await cache.hgetall(key) == {"a": b"1", "b": b"3", "c": b"4"}
    assert await cache.hdel(key, "a", "zz") == 1
    assert await cache.hgetall(key) == {"b": b"3", "c": b"4"}
    assert await cache.hdel(key, "b", "c") == 2
    assert await cache.hgetall(key) == {}
    assert await cache.delete(key) == 0  # an emptied hash is gone


async def test_hgetall_many(cache, unique):
    keys = [f"hm{i}:{unique}" for i in range(3000)]
    for i in (0, 1500, 2999):
        await cache.hset(keys[i], {"f": str(i).encode()})
    got = await cache.hgetall_many(keys + [f"absent:{unique}"])
    assert len(got) == 3001 and got[-1] == {}
    assert {i: h for i, h in enumerate(got) if h} == {0: {"f": b"0"}, 1500: {"f": b"1500"}, 2999: {"f": b"2999"}}
    assert await cache.hgetall_many([]) == []


async def test_hash_ttl(cache, unique):
    key = f"ht:{unique}"
    await cache.hset(key, {"a": b"1"})
    assert await cache.expire(key, TTL)
    deadline = asyncio.get_running_loop().time() + 5
    while await cache.hgetall(key):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


async def test_delete_any_type(cache, unique):
    await cache.hset(f"dh:{unique}", {"a": b"1"})
    await cache.zadd(f"dz:{unique}", {"m": 1})
    await cache.set(f"ds:{unique}", b"v")
    assert await cache.delete(f"dh:{unique}", f"dz:{unique}", f"ds:{unique}") == 3


async def test_wrong_type(cache, unique):
    key = f"wt:{unique}"
    await cache.set(key, b"v")
    with pytest.raises(InvalidInput):
        await cache.hset(key, {"a": b"1"})
    with pytest.raises(InvalidInput):
        await cache.zadd(key, {"a": 1})


async def test_sorted_sets(cache, unique):
    key = f"z:{unique}"
    assert await cache.zcard(key) == 0
    assert await cache.zrangebyscore(key, 0, 100) == []
    assert await cache.zadd(key, {"a": 3, "b": 1, "c": 2}) == 3
    assert await cache.zadd(key, {"a": 0.5, "d": 10}) == 1  # updating "a" does not count
    assert await cache.zcard(key) == 4
    assert await cache.zrangebyscore(key, float("-inf"), float("inf")) == [
        ("a", 0.5), ("b", 1.0), ("c", 2.0), ("d", 10.0),
    ]
    assert await cache.zrangebyscore(key, 1, 2) == [("b", 1.0), ("c", 2.0)]
    assert await cache.zrangebyscore(key, 0, 100, limit=2) == [("a", 0.5), ("b", 1.0)]
    assert await cache.zrem(key, "b", "nope") == 1
    assert await cache.zremrangebyscore(key, 0, 5) == 2
    assert await cache.zrangebyscore(key, 0, 100) == [("d", 10.0)]
    assert await cache.zrem(key, "d") == 1
    assert await cache.zcard(key) == 0


async def test_pubsub(cache, unique):
    channel = f"ch:{unique}"
    assert await cache.publish(channel, b"nobody") == 0
    received: list[bytes] = []
    subscription = cache.subscribe(channel)

    async def reader() -> None:
        async for message in subscription:
            received.append(message)
            if message == b"last":
                return

    task = asyncio.create_task(reader())
    # A remote subscription becomes active asynchronously: publish a probe until a
    # subscriber counts it, then the real messages.
    deadline = asyncio.get_running_loop().time() + 5
    while await cache.publish(channel, b"probe") < 1:
        assert asyncio.get_running_loop().time() < deadline, "subscription never became active"
        await asyncio.sleep(0.05)
    for i in range(3):
        assert await cache.publish(channel, f"m{i}".encode()) == 1
    await cache.publish(channel, b"last")
    await asyncio.wait_for(task, 5)
    real = [m for m in received if m != b"probe"]
    assert real == [b"m0", b"m1", b"m2", b"last"]
    await subscription.aclose()  # type: ignore[attr-defined]


async def test_pubsub_fanout(cache, unique):
    channel = f"fan:{unique}"
    subs = [cache.subscribe(channel) for _ in range(2)]
    tasks = [asyncio.create_task(anext(aiter(s))) for s in subs]
    deadline = asyncio.get_running_loop().time() + 5
    count = 0
    while count < 2:
        count = await cache.publish(channel, b"hello")
        if count < 2:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
    assert [await asyncio.wait_for(t, 5) for t in tasks] == [b"hello", b"hello"]
    for s in subs:
        await s.aclose()  # type: ignore[attr-defined]


async def test_start_close_idempotent(cache_opener):
    cache = cache_opener()
    await cache.start()
    await cache.start()
    await cache.close()
    await cache.close()


async def test_memory_cache_sweep_frees_unread_keys():
    from services.backends.embedded.memcache import MemoryCache

    cache = MemoryCache.from_url("memory://?sweep_interval=0.05")
    await cache.start()
    await cache.set_many({f"k{i}": b"v" for i in range(10)}, ttl=0.1)
    await cache.hset("h", {"f": b"v"})
    await cache.expire("h", 0.1)
    deadline = asyncio.get_running_loop().time() + 5
    # Nobody reads these keys: only the periodic sweep can drop them.
    while cache._values:
        assert asyncio.get_running_loop().time() < deadline, "sweep never ran"
        await asyncio.sleep(0.05)
    assert not cache._expires_at
    await cache.close()


async def test_concurrent_single_key_commands_each_get_their_own_answer(cache, unique):
    # Redis sends concurrent callers' commands in shared pipelines: each caller must still
    # get exactly its own reply, and one command's error must reach that caller alone.
    keys = [f"cc{i}:{unique}" for i in range(300)]
    await cache.set(f"num:{unique}", b"not a number")
    won = await asyncio.gather(*(cache.set_nx(key, key.encode(), ttl=30) for key in keys + keys))
    assert [first + second for first, second in zip(won[:300], won[300:])] == [1] * 300  # one winner per key
    got = await asyncio.gather(*(cache.get(key) for key in keys), cache.get(f"absent:{unique}"))
    assert got == [key.encode() for key in keys] + [None]
    results = await asyncio.gather(*(cache.incr(f"n{i}:{unique}", i) for i in range(50)),
                                   cache.incr(f"num:{unique}"), return_exceptions=True)
    assert results[:50] == list(range(50))
    assert isinstance(results[50], InvalidInput)
    await asyncio.gather(*(cache.set(key, b"v2") for key in keys))
    assert await cache.get_many(keys) == [b"v2"] * 300
