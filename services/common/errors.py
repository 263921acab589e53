"""Flare's error vocabulary.

Adapters translate driver exceptions (asyncpg, aiokafka, redis, sqlite3, grpc …)
into these at the edge (`raise BackendUnavailable(...) from exc`), so service code
and callers only ever see Flare errors. Each error carries a stable `code` that the
gateway puts into error frames and flarectl into its output.
"""

from __future__ import annotations

__all__ = [
    "FlareError",
    "BackendError",
    "BackendUnavailable",
    "NotFound",
    "Conflict",
    "CompactedError",
    "InvalidInput",
    "Unauthorized",
    "Forbidden",
    "RateLimited",
    "Rejected",
    "TooLarge",
    "Busy",
]


class FlareError(Exception):
    code = "internal"

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class BackendError(FlareError):
    """A backend failed in a way that retrying will not fix."""

    code = "backend_error"


class BackendUnavailable(BackendError):
    """A backend cannot be reached right now; the caller may retry."""

    code = "backend_unavailable"


class NotFound(FlareError):
    code = "not_found"


class Conflict(FlareError):
    """A compare-and-swap or uniqueness guard failed."""

    code = "conflict"


class CompactedError(FlareError):
    """A watch asked for a revision the store has already compacted away."""

    code = "compacted"

    def __init__(self, message: str = "", *, compact_revision: int) -> None:
        super().__init__(message, compact_revision=compact_revision)
        self.compact_revision = compact_revision


class InvalidInput(FlareError):
    code = "invalid_input"


class Unauthorized(FlareError):
    code = "unauthorized"


class Forbidden(FlareError):
    code = "forbidden"


class RateLimited(FlareError):
    code = "rate_limited"


class Rejected(FlareError):
    """Content refused by a filter rule."""

    code = "rejected"


class TooLarge(FlareError):
    code = "too_large"


class Busy(FlareError):
    """Overloaded: the send was shed, not queued (details: retry_after, in seconds)."""

    code = "busy"
