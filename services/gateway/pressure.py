"""The gateway's side of load shedding: refuse a send with `busy` before admitting it.

Two signals. The core's: a send the router refused with Busy (services.delivery.pressure)
closes the gate for a short hold-off, so the sends that follow are answered at once,
before `received`, instead of each crossing to the core to be refused there. And this
process's own: an event loop running late (measured by a ticker) means frames already
wait in socket buffers, so taking more only makes everyone later.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import NoReturn

from services.common.errors import Busy
from services.common.metrics import LOOP_LAG, SENDS_SHED

__all__ = ["SendGate"]


class SendGate:
    def __init__(self, *, max_loop_lag_ms: float = 75.0, hold_off_s: float = 0.1, tick_s: float = 0.025) -> None:
        self.max_loop_lag_ms = max_loop_lag_ms
        self.hold_off_s = hold_off_s
        self._tick_s = tick_s
        self.loop_lag_ms = 0.0  # how late the loop runs (smoothed): the message and retry_after
        self._sustained_lag_ms = 0.0  # the same with each tick's part capped: what decides
        self._closed_until = 0.0
        self._retry_after = 0.0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._measure_forever(), name="gateway-loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def check(self) -> None:
        """Busy when the core said so a moment ago or this loop runs late."""
        refusal = self.refusal()
        if refusal is not None:
            self.shed(refusal)

    def refusal(self) -> tuple[str, Busy] | None:
        """What check() would raise (and the cause it counts), without counting it: the
        caller may still answer the send (a resend of a stored message is never shed)."""
        if asyncio.get_running_loop().time() < self._closed_until:
            return "core", Busy("overloaded: retry later", retry_after=self._retry_after)
        if self._sustained_lag_ms > self.max_loop_lag_ms:
            return "gateway", Busy(f"overloaded: the gateway runs {self.loop_lag_ms:.0f} ms late; retry later",
                                   retry_after=round(min(5.0, max(0.05, self.loop_lag_ms / 1000)), 3))
        return None

    @staticmethod
    def shed(refusal: tuple[str, Busy]) -> NoReturn:
        cause, busy = refusal
        SENDS_SHED.labels(cause).inc()
        raise busy

    def core_busy(self, exc: Busy) -> None:
        retry_after = exc.details.get("retry_after")
        self._retry_after = retry_after if isinstance(retry_after, (int, float)) else 0.1
        self._closed_until = asyncio.get_running_loop().time() + min(self.hold_off_s, self._retry_after)

    async def _measure_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self._tick_s)
            lag = max(0.0, (loop.time() - started - self._tick_s) * 1000)
            self.loop_lag_ms = 0.7 * self.loop_lag_ms + 0.3 * lag
            # Decay, and cap what one tick adds, so one slow tick (a GC pause, the process
            # descheduled on a busy machine) does not shed by itself: 0.3 x twice the limit
            # stays under the limit, so it takes late ticks in a row. Uncapped, one 250 ms
            # pause closed the gate, and the sends that had queued in the socket buffers
            # during it, read right after it with the loop on time again, were all shed.
            capped = min(lag, 2 * self.max_loop_lag_ms)
            self._sustained_lag_ms = 0.7 * self._sustained_lag_ms + 0.3 * capped
            LOOP_LAG.set(self.loop_lag_ms / 1000)
