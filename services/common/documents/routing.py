"""`routing`: the router's route-cache TTL, connection pool and batch sizes."""

from __future__ import annotations

from pydantic import Field

from ._base import Duration, Model

__all__ = ["RoutingConfig"]


class RoutingConfig(Model):
    route_cache_ttl: Duration = 300
    conn_pool_size: int = Field(32, gt=0, le=10_000)
    batch_size: int = Field(100, gt=0, le=100_000)
