"""Pure text helpers the screens share (no I/O; times relative to the picture's own `at`, so a
replay reads as it did live)."""

from __future__ import annotations

import time

__all__ = ["ago", "clock", "role_of", "row_matches", "severity"]

SEVERITY = {"DOWN": 0, "NACKED": 1, "SEQ_GAP": 1, "LAG_GROWING": 2, "ERROR_RATE": 2, "STALE": 3, "NO_SUMMARY": 3}


def severity(alert: dict) -> int:
    return SEVERITY.get(alert.get("alert", ""), 9)


def ago(at: float, now: float) -> str:
    if not at:
        return "-"
    seconds = max(0, int(now - at))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s ago"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m ago"


def clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(at)) if at else "-"


def row_matches(row: dict, needle: str) -> bool:
    if not needle:
        return True
    haystack = " ".join([row["service"], row["instance_id"], row["health"],
                         *(f"{k['kind']} {k['state']}" for k in row.get("kinds", []))]).lower()
    return all(word in haystack for word in needle.lower().split())


def role_of(token: str | None) -> str | None:
    """The role a token claims, read without verifying (only to grey out what the server would
    refuse anyway; the control plane checks every call)."""
    if not token or "." not in token:
        return None
    import base64

    import orjson

    try:
        head = token.split(".", 1)[0]
        payload = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return payload.get("role") if isinstance(payload, dict) else None
