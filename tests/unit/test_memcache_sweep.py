"""memory:// expiry sweep: visits only what expired, honours a newer TTL, stays bounded."""

from __future__ import annotations

import time

from services.backends.embedded.memcache import MemoryCache


async def test_the_sweep_drops_the_expired_and_keeps_a_key_whose_ttl_was_renewed() -> None:
    cache = MemoryCache()
    await cache.set("short", b"1", ttl=0.05)
    await cache.set("renewed", b"1", ttl=0.05)
    await cache.set("renewed", b"2", ttl=60)  # its first deadline is still in the heap
    await cache.set("long", b"1", ttl=60)
    await cache.set("forever", b"1")
    time.sleep(0.08)
    assert cache.sweep() == 1
    assert cache._values.keys() == {"renewed", "long", "forever"}
    assert await cache.get("renewed") == b"2"
    assert cache.budget.used > 0


async def test_renewing_the_same_keys_over_and_over_does_not_grow_the_heap() -> None:
    cache = MemoryCache()
    for round_ in range(50):
        for i in range(200):
            await cache.set(f"route:{i}", str(round_).encode(), ttl=120)
    assert len(cache._expires_at) == 200
    assert len(cache._deadlines) <= 2 * 200 + 1024 + 1
    assert cache.sweep() == 0 and await cache.get("route:7") == b"49"


async def test_a_key_deleted_or_evicted_before_its_deadline_is_not_counted_again() -> None:
    cache = MemoryCache()
    await cache.set("gone", b"1", ttl=0.05)
    await cache.delete("gone")
    await cache.set("back", b"1", ttl=0.05)
    await cache.set("back", b"1")  # no TTL any more
    time.sleep(0.08)
    assert cache.sweep() == 0
    assert await cache.get("back") == b"1"
