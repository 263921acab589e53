"""Degraded health: components say what is wrong now, /healthz says it, logs stay readable.

A component that can fail while the process keeps serving (the log's disk is full, its
segments were damaged, the MessageDB is away) keeps a `Faults`: `fail(key, reason)` while
the fault lasts, `recover(key)` once an operation succeeds again. Its `problems()` lists the
reasons; `/healthz` reports `degraded` with them (HTTP 200: the node still serves, it needs
an operator) and `ok` again once every fault is over.

`Faults.fail` also logs, rate-limited per key: the first failure at once, then at most one
line per `log_every_s` carrying how many were suppressed. A retry loop against a full disk
logged 25k-45k lines in 25 s before; now it logs a handful.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

__all__ = ["Faults", "problems_of", "health_status"]


class Faults:
    def __init__(self, component: str, logger: logging.Logger, *, log_every_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.component = component
        self._logger = logger
        self._log_every_s = log_every_s
        self._clock = clock
        self._active: dict[str, str] = {}  # key -> reason
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def fail(self, key: str, reason: str, *, level: int = logging.WARNING) -> None:
        """Record that `key` is failing (again) for `reason`; log it unless it was logged lately."""
        started = key not in self._active
        self._active[key] = reason
        now = self._clock()
        last = self._last_logged.get(key)
        if not started and last is not None and now - last < self._log_every_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        suppressed = self._suppressed.pop(key, 0)
        self._last_logged[key] = now
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        self._logger.log(level, "%s: %s%s", self.component, reason, more)

    def recover(self, key: str) -> None:
        if self._active.pop(key, None) is not None:
            suppressed = self._suppressed.pop(key, 0)
            self._last_logged.pop(key, None)
            more = f" after {suppressed} more failures" if suppressed else ""
            self._logger.warning("%s: %s recovered%s", self.component, key, more)

    def failing(self, key: str) -> bool:
        return key in self._active

    def reasons(self) -> list[str]:
        return [f"{self.component}: {reason}" for reason in self._active.values()]


def problems_of(components: Iterable[object]) -> list[str]:
    """Every reason given by the components that report problems (a `problems()` method)."""
    out: list[str] = []
    for component in components:
        report = getattr(component, "problems", None)
        if callable(report):
            out.extend(report())
    return out


def health_status(problems: list[str]) -> str:
    return "degraded" if problems else "ok"
