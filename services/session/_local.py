"""In-process helpers for the session service: per-key locks and the route read-through cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

__all__ = ["KeyedLocks", "RouteCache"]

V = TypeVar("V")


class KeyedLocks:
    """One asyncio.Lock per key, dropped again when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class RouteCache(Generic[V]):
    """A small TTL cache that never stores a value fetched before an invalidation.

    The race it closes: a reader starts fetching user U, a login for U invalidates,
    then the reader stores what it fetched (the old routes) and serves them until the
    TTL. Readers take a `ticket()` before fetching; `store` refuses if U (or everything,
    after `clear`) was invalidated after that ticket.
    """

    def __init__(self, *, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, V]] = {}
        self._tick = 0
        self._invalidated_at: dict[Hashable, int] = {}
        self._floor = 0  # tickets older than this may not store (invalidation log was cut)
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def ticket(self) -> int:
        return self._tick

    def store(self, key: Hashable, value: V, ticket: int) -> bool:
        if self.ttl_s <= 0 or ticket < self._floor or self._invalidated_at.get(key, -1) > ticket:
            return False
        if key in self._entries:
            del self._entries[key]  # re-insert at the end: eviction below is oldest-first
        elif len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self._clock() + self.ttl_s, value)
        return True

    def invalidate(self, key: Hashable) -> None:
        self._tick += 1
        self._entries.pop(key, None)
        self._invalidated_at[key] = self._tick
        if len(self._invalidated_at) > self.max_entries:
            self.clear()

    def clear(self) -> None:
        self._tick += 1
        self._entries.clear()
        self._invalidated_at.clear()
        self._floor = self._tick

    def __len__(self) -> int:
        return len(self._entries)
