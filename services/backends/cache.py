"""The Cache port: volatile key-value data with TTLs (Redis' model).

Nothing whose loss loses a message may live only here (ARCHITECTURE §6): the cache
holds dedup hints, routes, presence and the L0 recent-message copy.
Adapters: `memory://` (embedded) and `redis://host:port` / `redis+cluster://host:port`.
Contract suite: tests/contract/test_cache.py. TTLs are in seconds (float allowed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

__all__ = ["Cache"]


@runtime_checkable
class Cache(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    # -- plain keys ------------------------------------------------------------
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None: ...

    async def set_nx(self, key: str, value: bytes, *, ttl: float | None = None) -> bool:
        """Set only if absent; True if this call set it."""

    async def set_nx_many(self, keys: Sequence[str], value: bytes, *, ttl: float | None = None) -> list[bool]:
        """`set_nx` of each key to `value`, in order, as one batch: True where this call set
        it (markers that make an action happen once: DELIVERED per recipient)."""

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def set_many(self, items: Mapping[str, bytes], *, ttl: float | None = None) -> None: ...

    async def delete(self, *keys: str) -> int:
        """Delete keys of any type; return how many existed."""

    async def incr(self, key: str, amount: int = 1) -> int: ...

    async def expire(self, key: str, ttl: float) -> bool: ...

    async def ttl(self, key: str) -> float | None:
        """Seconds left; None if the key has no TTL or does not exist."""

    # -- hashes ----------------------------------------------------------------
    async def hset(self, key: str, mapping: Mapping[str, bytes]) -> None: ...

    async def hget(self, key: str, field: str) -> bytes | None: ...

    async def hgetall(self, key: str) -> dict[str, bytes]: ...

    async def hgetall_many(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        """`hgetall` of each key, in order, as one batch (a fan-out reads thousands of keys)."""

    async def hdel(self, key: str, *fields: str) -> int: ...

    # -- sorted sets -----------------------------------------------------------
    async def zadd(self, key: str, mapping: Mapping[str, float]) -> int: ...

    async def zrangebyscore(
        self, key: str, min_score: float, max_score: float, *, limit: int | None = None
    ) -> list[tuple[str, float]]:
        """Members with min_score <= score <= max_score, lowest score first."""

    async def zrem(self, key: str, *members: str) -> int: ...

    async def zremrangebyscore(self, key: str, min_score: float, max_score: float) -> int: ...

    async def zcard(self, key: str) -> int: ...

    # -- pub/sub ---------------------------------------------------------------
    async def publish(self, channel: str, message: bytes) -> int: ...

    def subscribe(self, channel: str) -> AsyncIterator[bytes]:
        """Messages published to `channel` after the iterator started."""
