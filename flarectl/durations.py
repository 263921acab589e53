"""Parse human durations ('250ms', '30s', '15m', '24h', '7d') into seconds."""

from __future__ import annotations

import re

__all__ = ["parse_duration"]

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(text: str) -> float:
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 250ms, 30s, 15m, 24h, 7d)")
    value = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if value <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return value
