"""Parse human durations ('250ms', '30s', '15m', '24h', '7d') into seconds."""

from __future__ import annotations

from services.common.durations import duration_seconds

__all__ = ["parse_duration"]


def parse_duration(text: str) -> float:
    value = duration_seconds(text)
    if value is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 250ms, 30s, 15m, 24h, 7d)")
    if value <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return value
