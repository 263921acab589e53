"""Per-sender message frequency limits (the `frequency` spam rule): a small strategy.

- InMemoryFrequencyLimiter: an exact sliding window per sender in this process. The
  monolith default: no round trip, a deque append on the hot path.
- CacheFrequencyLimiter: shared through the Cache port (Redis in the split deployment,
  where one sender's messages reach many router/filter instances). Redis' usual
  sliding-window *counter*: two fixed buckets weighted by overlap, one INCR per message,
  so it is approximate near bucket edges and never needs more than two keys per sender.

Both count only accepted messages: a sender who keeps hammering is not pushed further
out by the rejected attempts, and retry_after stays honest.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

from services.backends.cache import Cache

__all__ = ["FrequencyLimiter", "LimiterFactory", "InMemoryFrequencyLimiter", "CacheFrequencyLimiter"]


class FrequencyLimiter(Protocol):
    limit: int
    window: float

    async def hit(self, sender: str, now: float) -> float | None:
        """Count one message from `sender` at `now` (seconds) if it fits.

        Returns None when the message is within the limit (and counts it), otherwise
        the seconds until it would fit (the message is not counted).
        """


class LimiterFactory(Protocol):
    def __call__(self, *, limit: int, window: float) -> FrequencyLimiter: ...


class InMemoryFrequencyLimiter:
    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = -math.inf

    async def hit(self, sender: str, now: float) -> float | None:
        if now >= self._next_sweep:
            self._sweep(now)
        hits = self._hits.get(sender)
        if hits is None:
            hits = self._hits[sender] = deque()
        horizon = now - self.window
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] - horizon
        hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        # Senders who went quiet would otherwise keep their deque forever; one pass per
        # window keeps memory proportional to the senders active in the last window.
        horizon = now - self.window
        stale = [sender for sender, hits in self._hits.items() if not hits or hits[-1] <= horizon]
        for sender in stale:
            del self._hits[sender]
        self._next_sweep = now + self.window

    def __len__(self) -> int:
        return len(self._hits)


class CacheFrequencyLimiter:
    def __init__(self, cache: Cache, *, limit: int, window: float, prefix: str = "filter:freq") -> None:
        self.limit = limit
        self.window = window
        self._cache = cache
        # The rule's shape is part of the key: changing limit/window starts fresh counters
        # instead of misreading the old ones.
        self._prefix = f"{prefix}:{limit}:{window:g}"

    async def hit(self, sender: str, now: float) -> float | None:
        bucket = int(now // self.window)
        current_key = f"{self._prefix}:{sender}:{bucket}"
        count = await self._cache.incr(current_key)
        if count == 1:
            # Kept two windows: it is read as the previous bucket during the next one.
            await self._cache.expire(current_key, self.window * 2)
        raw_previous = await self._cache.get(f"{self._prefix}:{sender}:{bucket - 1}")
        previous = int(raw_previous) if raw_previous else 0
        into_bucket = (now - bucket * self.window) / self.window
        if previous * (1.0 - into_bucket) + count <= self.limit:
            return None
        await self._cache.incr(current_key, -1)  # not counted: see the module docstring
        return self._retry_after(previous, count - 1, into_bucket)

    def _retry_after(self, previous: int, current: int, into_bucket: float) -> float:
        """Seconds until previous*(1-f) + current + 1 <= limit, f = position in a bucket."""
        room = self.limit - current - 1
        if room >= 0 and previous > 0:
            # Still in this bucket: wait for enough of the previous bucket to slide out.
            needed = 1.0 - room / previous
            return max((needed - into_bucket) * self.window, 0.001)
        # This bucket alone is full: wait for the next one, where it becomes "previous".
        until_next = (1.0 - into_bucket) * self.window
        needed = 1.0 - (self.limit - 1) / current if current > 0 else 0.0
        return until_next + max(needed, 0.0) * self.window
