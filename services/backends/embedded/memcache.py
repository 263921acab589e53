"""`memory://` — the Cache port on plain in-process dicts.

Redis semantics where callers can observe them: one keyspace shared by strings, hashes
and sorted sets (a type mismatch is InvalidInput, Redis' WRONGTYPE), `set` clears a TTL
while `incr`/`hset`/`zadd` keep it, and an empty hash or sorted set disappears.
Expiry is lazy (checked on every access) plus a periodic sweep, so memory held by keys
nobody reads again is still given back.

Memory: `memory://?max_bytes=N` (default 128 MiB) caps the estimated bytes of every key
and value. Past the cap the least recently used *string with a TTL* goes first: those
are the bulk (L0 copies, dedup hints, which the MessageDB backs) and the cheapest to lose.
Hashes and sorted sets (routes, presence) go only when no such string is left, and keys
without a TTL last: evicting a live route would silently turn an online device offline.
`flare_memory_bytes{structure="cache"}` and `flare_memory_evictions_total` report it.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

from services.common.bounds import ENTRY_OVERHEAD, ByteBudget, MiB
from services.common.errors import InvalidInput

__all__ = ["MemoryCache"]

_STR, _HASH, _ZSET = "string", "hash", "zset"
_CLOSED = object()  # sentinel pushed to subscriber queues on close
DEFAULT_MAX_BYTES = 128 * MiB
_SUBSCRIBER_QUEUE = 10_000  # messages a subscriber may fall behind before the oldest are dropped
_FIELD_OVERHEAD = 80  # a hash field or sorted-set member beyond its own bytes


class _Subscription:
    """An async iterator over one channel; registered at construction, so it sees every
    message published after `subscribe()` returned."""

    def __init__(self, cache: MemoryCache, channel: str) -> None:
        self._cache = cache
        self._channel = channel
        self._queue: asyncio.Queue[object] = asyncio.Queue(_SUBSCRIBER_QUEUE)
        self._done = False
        cache._subscribers.setdefault(channel, set()).add(self._queue)

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _CLOSED:
            await self.aclose()
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    async def aclose(self) -> None:
        if self._done:
            return
        self._done = True
        queues = self._cache._subscribers.get(self._channel)
        if queues is not None:
            queues.discard(self._queue)
            if not queues:
                del self._cache._subscribers[self._channel]


class MemoryCache:
    def __init__(self, *, sweep_interval_s: float = 1.0, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._values: dict[str, tuple[str, object]] = {}
        self._expires_at: dict[str, float] = {}  # monotonic deadline per key with a TTL
        # (deadline, key) for the sweep, soonest first. An entry whose key got another
        # deadline, or went, is skipped when it comes up; the heap is rebuilt from
        # _expires_at when such entries outnumber the live ones, so it stays within 2x.
        self._deadlines: list[tuple[float, str]] = []
        self._sizes: dict[str, int] = {}  # estimated bytes per key
        # Recency per eviction class, least recent first (see the module docstring); a live
        # key is in exactly one, and _rank says which.
        self._strings_with_ttl: OrderedDict[str, None] = OrderedDict()
        self._others_with_ttl: OrderedDict[str, None] = OrderedDict()
        self._without_ttl: OrderedDict[str, None] = OrderedDict()
        self._rank: dict[str, OrderedDict[str, None]] = {}
        self.budget = ByteBudget("cache", max_bytes)
        self._subscribers: dict[str, set[asyncio.Queue[object]]] = {}
        self._sweep_interval_s = sweep_interval_s
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str) -> MemoryCache:
        parts = urlsplit(url)
        if parts.scheme != "memory":
            raise InvalidInput("MemoryCache needs a memory:// URL", url=url)
        query = parse_qs(parts.query)
        try:
            interval = float(query.get("sweep_interval", ["1.0"])[0])
        except ValueError as exc:
            raise InvalidInput("sweep_interval must be a number", url=url) from exc
        try:
            max_bytes = int(query.get("max_bytes", [str(DEFAULT_MAX_BYTES)])[0])
        except ValueError as exc:
            raise InvalidInput("max_bytes must be an integer", url=url) from exc
        if max_bytes < 0:
            raise InvalidInput("max_bytes cannot be negative", url=url)
        return cls(sweep_interval_s=interval, max_bytes=max_bytes)

    async def start(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="memcache-sweep")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            try:
                await self._sweeper
            except asyncio.CancelledError:
                pass
            self._sweeper = None
        for queues in list(self._subscribers.values()):
            for queue in list(queues):
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(_CLOSED)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval_s)
            self.sweep()

    def sweep(self) -> int:
        """Drop every expired key now; return how many went.

        Only the expired keys are visited (the heap is in deadline order): walking every
        key with a TTL each second stopped the loop ~25 ms per 300,000 keys, and the dedup
        hints alone live a day."""
        now = time.monotonic()
        deadlines, expires_at = self._deadlines, self._expires_at
        dropped = 0
        while deadlines and deadlines[0][0] <= now:
            deadline, key = heapq.heappop(deadlines)
            if expires_at.get(key) == deadline:
                self._drop(key)
                dropped += 1
        return dropped

    # -- internals -----------------------------------------------------------------
    def _drop(self, key: str) -> bool:
        self._expires_at.pop(key, None)
        rank = self._rank.pop(key, None)
        if rank is not None:
            del rank[key]
        self.budget.used -= self._sizes.pop(key, 0)
        return self._values.pop(key, None) is not None

    def _live(self, key: str) -> tuple[str, object] | None:
        deadline = self._expires_at.get(key)
        if deadline is not None and deadline <= time.monotonic():
            self._drop(key)
            return None
        entry = self._values.get(key)
        if entry is not None:
            self._rank[key].move_to_end(key)
        return entry

    def _typed(self, key: str, kind: str) -> object | None:
        entry = self._live(key)
        if entry is None:
            return None
        if entry[0] != kind:
            raise InvalidInput(f"key {key!r} holds a {entry[0]}, not a {kind}", key=key)
        return entry[1]

    def _set_ttl(self, key: str, ttl: float | None) -> None:
        if ttl is None:
            self._expires_at.pop(key, None)
        elif ttl <= 0:
            raise InvalidInput("ttl must be positive", ttl=ttl)
        else:
            deadline = self._expires_at[key] = time.monotonic() + ttl
            heapq.heappush(self._deadlines, (deadline, key))
            if len(self._deadlines) > 2 * len(self._expires_at) + 1024:
                self._deadlines = [(d, k) for k, d in self._expires_at.items()]
                heapq.heapify(self._deadlines)
        if key in self._values:
            self._place(key)

    def _place(self, key: str) -> None:
        """Put key, most recent, into the eviction class its kind and TTL give it."""
        if key not in self._expires_at:
            rank = self._without_ttl
        elif self._values[key][0] == _STR:
            rank = self._strings_with_ttl
        else:
            rank = self._others_with_ttl
        old = self._rank.get(key)
        if old is not None and old is not rank:
            del old[key]
        self._rank[key] = rank
        rank[key] = None
        rank.move_to_end(key)

    def _store(self, key: str, kind: str, value: object, size: int) -> None:
        self._values[key] = (kind, value)
        self.budget.used += size - self._sizes.get(key, 0)
        self._sizes[key] = size
        self._place(key)

    def _grow(self, key: str, delta: int) -> None:
        self._sizes[key] += delta
        self.budget.used += delta

    def _enforce(self) -> None:
        budget = self.budget
        while budget.used > budget.limit:
            rank = self._strings_with_ttl or self._others_with_ttl or self._without_ttl
            if not rank:
                return
            self._drop(next(iter(rank)))
            budget.evictions += 1

    @staticmethod
    def _check_bytes(value: object) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise InvalidInput(f"cache values are bytes, got {type(value).__name__}")
        return bytes(value)

    # -- plain keys ----------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        return self._typed(key, _STR)  # type: ignore[return-value]

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None:
        value = self._check_bytes(value)
        self._set_ttl(key, ttl)
        self._store(key, _STR, value, _string_size(key, value))
        self._enforce()

    async def set_nx(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        if self._live(key) is not None:
            return False
        await self.set(key, value, ttl=ttl)
        return True

    async def set_nx_many(self, keys: Sequence[str], value: bytes, *, ttl: float | None = None) -> list[bool]:
        return [await self.set_nx(key, value, ttl=ttl) for key in keys]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        out: list[bytes | None] = []
        for key in keys:
            entry = self._live(key)
            # MGET answers nil for a key of another type instead of failing the batch.
            out.append(entry[1] if entry is not None and entry[0] == _STR else None)  # type: ignore[misc]
        return out

    async def set_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None:
        checked = {key: self._check_bytes(value) for key, value in items.items()}
        for key, value in checked.items():
            self._set_ttl(key, ttl)
            self._store(key, _STR, value, _string_size(key, value))
        self._enforce()

    async def delete(self, *keys: str) -> int:
        return sum(1 for key in keys if self._live(key) is not None and self._drop(key))

    async def incr(self, key: str, amount: int = 1) -> int:
        current = self._typed(key, _STR)
        try:
            number = int(current) if current is not None else 0  # type: ignore[arg-type]
        except ValueError as exc:
            raise InvalidInput(f"key {key!r} does not hold an integer", key=key) from exc
        number += amount
        encoded = str(number).encode()
        self._store(key, _STR, encoded, _string_size(key, encoded))
        self._enforce()
        return number

    async def expire(self, key: str, ttl: float) -> bool:
        if self._live(key) is None:
            return False
        self._set_ttl(key, ttl)
        return True

    async def ttl(self, key: str) -> float | None:
        if self._live(key) is None:
            return None
        deadline = self._expires_at.get(key)
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    # -- hashes --------------------------------------------------------------------
    async def hset(self, key: str, mapping: Mapping[str, bytes]) -> None:
        checked = {field: self._check_bytes(value) for field, value in mapping.items()}
        current = self._typed(key, _HASH)
        if current is None:
            current = {}
            self._store(key, _HASH, current, len(key) + ENTRY_OVERHEAD)
        delta = 0
        for field, value in checked.items():
            old = current.get(field)  # type: ignore[attr-defined]
            delta += len(value) - (len(old) if old is not None else -(len(field) + _FIELD_OVERHEAD))
        current.update(checked)  # type: ignore[attr-defined]
        self._grow(key, delta)
        self._enforce()

    async def hget(self, key: str, field: str) -> bytes | None:
        current = self._typed(key, _HASH)
        return None if current is None else current.get(field)  # type: ignore[attr-defined]

    async def hgetall(self, key: str) -> dict[str, bytes]:
        current = self._typed(key, _HASH)
        return {} if current is None else dict(current)  # type: ignore[call-overload]

    async def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        return [await self.hgetall(key) for key in keys]

    async def hdel(self, key: str, *fields: str) -> int:
        current: dict[str, bytes] | None = self._typed(key, _HASH)  # type: ignore[assignment]
        if current is None:
            return 0
        removed, delta = 0, 0
        for field in fields:
            old = current.pop(field, None)
            if old is not None:
                removed += 1
                delta -= len(field) + len(old) + _FIELD_OVERHEAD
        if not current:
            self._drop(key)
        elif delta:
            self._grow(key, delta)
        return removed

    # -- sorted sets ---------------------------------------------------------------
    async def zadd(self, key: str, mapping: Mapping[str, float]) -> int:
        current: dict[str, float] | None = self._typed(key, _ZSET)  # type: ignore[assignment]
        if current is None:
            current = {}
            self._store(key, _ZSET, current, len(key) + ENTRY_OVERHEAD)
        new_members = [member for member in mapping if member not in current]
        current.update({member: float(score) for member, score in mapping.items()})
        if new_members:
            self._grow(key, sum(len(member) + _FIELD_OVERHEAD for member in new_members))
            self._enforce()
        return len(new_members)

    async def zrangebyscore(
        self, key: str, min_score: float, max_score: float, *, limit: int | None = None
    ) -> list[tuple[str, float]]:
        current: dict[str, float] | None = self._typed(key, _ZSET)  # type: ignore[assignment]
        if current is None:
            return []
        # Ties ordered by member, as Redis does; sets here stay small (routes, recent ids).
        hits = sorted(
            ((member, score) for member, score in current.items() if min_score <= score <= max_score),
            key=lambda item: (item[1], item[0]),
        )
        return hits if limit is None else hits[:limit]

    async def zrem(self, key: str, *members: str) -> int:
        current: dict[str, float] | None = self._typed(key, _ZSET)  # type: ignore[assignment]
        if current is None:
            return 0
        gone = [member for member in members if current.pop(member, None) is not None]
        if not current:
            self._drop(key)
        elif gone:
            self._grow(key, -sum(len(member) + _FIELD_OVERHEAD for member in gone))
        return len(gone)

    async def zremrangebyscore(self, key: str, min_score: float, max_score: float) -> int:
        current: dict[str, float] | None = self._typed(key, _ZSET)  # type: ignore[assignment]
        if current is None:
            return 0
        doomed = [member for member, score in current.items() if min_score <= score <= max_score]
        return await self.zrem(key, *doomed) if doomed else 0

    async def zcard(self, key: str) -> int:
        current = self._typed(key, _ZSET)
        return 0 if current is None else len(current)  # type: ignore[arg-type]

    # -- pub/sub -------------------------------------------------------------------
    async def publish(self, channel: str, message: bytes) -> int:
        message = self._check_bytes(message)
        queues = self._subscribers.get(channel, ())
        for queue in queues:
            if queue.full():  # a subscriber that stopped reading loses its oldest, not our memory
                queue.get_nowait()
            queue.put_nowait(message)
        return len(queues)

    def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        return _Subscription(self, channel)


def _string_size(key: str, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD
