"""Load shedding: how far delivery is behind the sends the router admitted.

Overload must cost the senders who arrive during it an answer (`busy`, with a
`retry_after`), not every user their latency: a queue that grows without bound turns a
2x burst into a p99 of seconds and a process of gigabytes. The signal is the backlog of
admitted messages not yet handed to the gateways and the age of what is being delivered
now (send -> delivery, from the message's created_at): when both are high, new sends are
refused until the backlog is worked down.

Counts are per process: in the monolith the router that admits is the one that delivers.
In the split deployment each router sees only what it delivers, which still sheds a
router whose deliveries fall behind (a bound, if a looser one).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from services.common.errors import Busy
from services.common.metrics import SENDS_SHED
from services.common.model import Message, now_ms

__all__ = ["Backlog"]


class Backlog:
    def __init__(self, *, max_lag_ms: float = 50.0, min_backlog: int = 200, max_backlog: int = 20_000) -> None:
        """Shed when `min_backlog` admitted messages wait and deliveries run `max_lag_ms`
        behind their sends, or whenever `max_backlog` wait (delivery stalled)."""
        self.max_lag_ms = max_lag_ms
        self.min_backlog = min_backlog
        self.max_backlog = max_backlog
        self.waiting = 0  # admitted, not yet delivered
        self.lag_ms = 0.0  # send -> delivery of the newest message delivered
        self.shed = 0
        self._lag_at = time.monotonic()

    def admitted(self) -> None:
        self.waiting += 1

    def delivered(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        self.waiting = max(0, self.waiting - len(messages))
        self.lag_ms = max(0, now_ms() - messages[-1].created_at)
        self._lag_at = time.monotonic()

    def check(self) -> None:
        """Busy (with retry_after) when delivery is too far behind to take another send."""
        if self.waiting < self.min_backlog:
            return
        # The lag is that of the last delivered batch; when nothing was delivered since,
        # the wait so far counts too (a stalled delivery has no fresh lag to report).
        lag_ms = max(self.lag_ms, (time.monotonic() - self._lag_at) * 1000)
        if lag_ms < self.max_lag_ms and self.waiting < self.max_backlog:
            return
        self.shed += 1
        SENDS_SHED.labels("delivery").inc()
        retry_after = round(min(5.0, max(0.05, lag_ms / 1000)), 3)
        raise Busy(f"overloaded: {self.waiting} messages wait for delivery; retry after {retry_after} s",
                   retry_after=retry_after)
