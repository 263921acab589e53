"""`tiering`: L0 cache TTL, L1 retention, L2 archive target, hot/cold split, compression, sharding."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from ._base import Duration, Model

__all__ = ["Sharding", "TieringPolicy"]


class Sharding(Model):
    time_bucket: Duration = 86400  # one L2 segment per conversation shard per day by default
    conversation_buckets: int = Field(16, gt=0, le=65536)


class TieringPolicy(Model):
    l0_ttl: Duration = 24 * 3600
    l1_retention: Duration = 30 * 86400
    l2_target: str = "objectstore://archive/"
    hot_cold_threshold: Duration = 7 * 86400
    compression: Literal["lz4", "snappy", "zstd"] = "zstd"
    sharding: Sharding = Sharding()

    @field_validator("l2_target")
    @classmethod
    def _target(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep or not scheme or not rest:
            raise ValueError(f"{value!r} is not a URL like s3://bucket/prefix or objectstore://archive/")
        return value

    @field_validator("hot_cold_threshold")
    @classmethod
    def _within_retention(cls, value: float, info: ValidationInfo) -> float:
        # Data must stay in L1 at least as long as it is hot, or "hot" data would already be archived.
        retention = info.data.get("l1_retention")
        if retention is not None and value > retention:
            raise ValueError(f"must not exceed l1_retention ({retention:g}s)")
        return value
