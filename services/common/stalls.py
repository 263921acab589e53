"""Where the event loop was when it stalled: an opt-in watchdog for on-call and benchmarks.

A p99 made of rare 100 ms stops is invisible to a sampling profiler (the stop is 1 % of
the samples, spread over whatever happened to run) and to asyncio's debug mode (which
slows everything and names only the callback, not the line). Here a daemon thread checks a
heartbeat the loop stamps every `tick_s`; while the stamp is older than `threshold_s` it
samples the loop thread's Python stack every `sample_s`, and when the loop runs again it
logs one warning: how long the stall was and the stack it was seen in most.

Why a thread can see this: the loop thread holds the GIL while it runs Python code, but
CPython makes it drop the GIL every switch interval (services.common.runtime sets 0.5 ms),
so the watchdog gets its turn inside the stall, and `sys._current_frames()` gives the
loop thread's frame at that moment. A stall inside C code that keeps the GIL (a long
`sqlite3` call that does not release it, a regex) shows as that call's Python caller.

Cost when enabled: one loop timer per `tick_s` and a thread waking every `sample_s`
(~1 % of a core at the defaults). Off unless FLARE_STALL_REPORT_MS is set (or a caller
starts it). Bounded: at most `max_stacks` distinct stacks are counted per stall, and
`reports` keeps the last `keep` stall reports.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

__all__ = ["StallReport", "StallWatchdog", "watchdog_from_env", "ENV_VAR"]

log = logging.getLogger("flare.stalls")

ENV_VAR = "FLARE_STALL_REPORT_MS"


@dataclass(slots=True)
class StallReport:
    duration_s: float
    samples: int
    stacks: collections.Counter = field(default_factory=collections.Counter)  # stack text -> samples

    def top(self) -> str:
        """The stack seen in most samples ('' when the loop ran again before one was taken)."""
        return self.stacks.most_common(1)[0][0] if self.stacks else ""


class StallWatchdog:
    def __init__(self, threshold_s: float = 0.05, *, tick_s: float = 0.01, sample_s: float = 0.005,
                 max_stacks: int = 16, keep: int = 64, depth: int = 12) -> None:
        self.threshold_s = threshold_s
        self._tick_s = tick_s
        self._sample_s = sample_s
        self._max_stacks = max_stacks
        self._depth = depth
        self.reports: collections.deque[StallReport] = collections.deque(maxlen=keep)
        self._stamp = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread_id = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Call from the loop's thread, with the loop running."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread_id = threading.get_ident()
        self._stamp = time.monotonic()
        self._beat()
        self._thread = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def _beat(self) -> None:
        self._stamp = time.monotonic()
        assert self._loop is not None
        self._timer = self._loop.call_later(self._tick_s, self._beat)

    def _watch(self) -> None:
        current: StallReport | None = None
        started = 0.0
        while not self._stop.wait(self._sample_s):
            late = time.monotonic() - self._stamp - self._tick_s
            if late > self.threshold_s:
                if current is None:
                    current, started = StallReport(0.0, 0), self._stamp + self._tick_s
                self._sample(current)
            elif current is not None:
                current.duration_s = self._stamp - started
                self._finish(current)
                current = None

    def _sample(self, report: StallReport) -> None:
        frame = sys._current_frames().get(self._loop_thread_id)
        if frame is None:
            return
        report.samples += 1
        stack = "".join(traceback.format_list(traceback.extract_stack(frame, limit=self._depth)))
        if stack in report.stacks or len(report.stacks) < self._max_stacks:
            report.stacks[stack] += 1

    def _finish(self, report: StallReport) -> None:
        self.reports.append(report)
        log.warning("event loop stalled %.0f ms (%d samples); most seen in:\n%s",
                    report.duration_s * 1000, report.samples, report.top() or "(no sample taken)")


def watchdog_from_env() -> StallWatchdog | None:
    """A started watchdog when FLARE_STALL_REPORT_MS is set (the stall threshold in ms)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    try:
        threshold_ms = float(value)
    except ValueError:
        log.warning("%s=%r is not a number of milliseconds; no stall reports", ENV_VAR, value)
        return None
    watchdog = StallWatchdog(threshold_ms / 1000)
    watchdog.start()
    return watchdog
