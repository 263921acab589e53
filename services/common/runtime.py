"""Process-wide interpreter settings for a Flare server process."""

from __future__ import annotations

import sys

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

__all__ = ["tune_interpreter", "raise_open_file_limit", "GIL_SWITCH_INTERVAL_S"]

# The embedded backends finish their I/O in worker threads (SQLite, log writes, fsync), and
# each completion must take the GIL back from a busy event loop. At CPython's default 5 ms
# switch interval every such hop can wait up to 5 ms, and a message crosses several of them;
# at 0.5 ms the measured send->deliver p99 at 100 msg/s fell from ~75 ms to ~40 ms.
GIL_SWITCH_INTERVAL_S = 0.0005


def tune_interpreter() -> None:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    raise_open_file_limit()


def raise_open_file_limit(ceiling: int = 1 << 20) -> int:
    """Lift the soft open-files limit to the hard one (at most `ceiling`); return it.

    Every WebSocket client is a file handle, and distributions still default the soft limit
    to 1024 with a far higher hard limit: a gateway should get what the host allows. (The
    admin port holds a bounded number of handles whatever this is: services.common.adminhttp.)
    """
    if resource is None:
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(ceiling, hard) if hard != resource.RLIM_INFINITY else ceiling
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            pass
    return soft
