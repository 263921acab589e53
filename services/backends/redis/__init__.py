"""Redis adapter for the Cache port (redis.asyncio; Redis Cluster via redis+cluster://)."""

from __future__ import annotations

__all__ = ["RedisCache"]


def __getattr__(name: str):
    if name == "RedisCache":
        from .cache import RedisCache

        return RedisCache
    raise AttributeError(name)
