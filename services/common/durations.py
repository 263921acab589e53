"""The duration grammar operators write in documents and flags: '250ms', '30s', '15m', '24h', '7d'."""

from __future__ import annotations

import re

__all__ = ["duration_seconds"]

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def duration_seconds(text: str) -> float | None:
    """Seconds for a duration string (a bare number is seconds); None if it is not one.
    Callers word their own error and decide whether zero is allowed."""
    match = _PATTERN.match(text)
    return float(match.group(1)) * _UNIT_S[match.group(2)] if match else None
