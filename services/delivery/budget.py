"""A per-sender fan-out budget: what one user's messages may cost the node in deliveries.

A message costs one unit per recipient (a c2c message 1, a message to a 100,001-member
group 100,000). Each sender has a token bucket of `burst` units refilled at `per_s`; a
send that does not fit is refused as RateLimited with the seconds until it would, before
anything is stored. So no single user can make the node fan out more than
`burst + per_s * t` deliveries, however big the groups they belong to.

Per process: in the split deployment each router instance keeps its own buckets, so the
bound is per instance. The buckets of at most `max_senders` senders are kept (least
recently seen forgotten first, which hands it a full bucket: generous, never unbounded).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["FanoutBudget"]


class FanoutBudget:
    def __init__(self, *, burst: int, per_s: float, max_senders: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.per_s = per_s
        self._max_senders = max_senders
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # sender -> (tokens, at)

    def charge(self, sender: str, cost: int) -> float | None:
        """Take `cost` units from the sender's bucket; None if they fit, else the seconds
        until they would (nothing taken). A cost above the burst never fits."""
        now = self._clock()
        tokens, at = self._buckets.pop(sender, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.per_s)
        refused: float | None = None
        if cost > tokens:
            missing = cost - tokens
            refused = float("inf") if cost > self.burst or self.per_s <= 0 else missing / self.per_s
        else:
            tokens -= cost
        self._buckets[sender] = (tokens, now)
        while len(self._buckets) > self._max_senders:
            self._buckets.popitem(last=False)
        return refused
