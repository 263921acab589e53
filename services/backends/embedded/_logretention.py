"""Retention of a FileLog topic: whole old segments go once they are too old or too many bytes.

Kafka's rules: a segment is deleted when its newest record is older than `retention_ms`,
or while the partition holds more than `retention_bytes`; never the active segment, and
regardless of consumers (a consumer left behind resumes at the new start of the log). This
also bounds the in-memory index (a file position and a timestamp per record), which
otherwise grew by 16 bytes per message forever.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ._logfiles import PartitionFiles, Segment

__all__ = ["Retention", "expired_segments", "unlink_segments_sync"]


@dataclass(frozen=True, slots=True)
class Retention:
    ms: int | None = None  # None: keep forever
    bytes: int | None = None  # per partition

    def to_meta(self) -> dict:
        return {"retention_ms": self.ms, "retention_bytes": self.bytes}

    @classmethod
    def from_meta(cls, meta: dict) -> Retention:
        return cls(meta.get("retention_ms"), meta.get("retention_bytes"))


def expired_segments(files: PartitionFiles, policy: Retention, now_ms: int) -> int:
    """How many of the oldest segments the policy lets go."""
    if policy.ms is None and policy.bytes is None:
        return 0
    total = sum(segment.size for segment in files.segments)
    count = 0
    for segment in files.segments[:-1]:
        newest = files.max_timestamps[segment.next_offset - 1 - files.log_start] if segment.positions else None
        too_old = policy.ms is not None and (newest is None or newest < now_ms - policy.ms)
        too_big = policy.bytes is not None and total > policy.bytes
        if not (too_old or too_big):
            break
        total -= segment.size
        count += 1
    return count


def unlink_segments_sync(segments: list[Segment]) -> None:
    for segment in segments:
        try:
            os.close(segment.read_fd)
        except OSError:
            pass
        try:
            segment.path.unlink()
        except FileNotFoundError:
            pass
