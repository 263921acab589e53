"""Load shedding: how far delivery is behind the sends the router admitted.

Overload must cost the senders who arrive during it an answer (`busy`, with a
`retry_after`), not every user their latency: a queue that grows without bound turns a
2x burst into a p99 of seconds and a process of gigabytes. The signal is the backlog of
admitted messages not yet handed to the gateways and the age of what is being delivered
now (send -> delivery, from the message's created_at): when both are high, new sends are
refused until the backlog is worked down.

"High" for the backlog is a time, not a count: the messages waiting divided by the rate
deliveries have been handed over lately, i.e. how long a send admitted now would queue.
A fixed count was wrong at every rate but one: 200 waiting is 400 ms of queue at 500
messages/s (the accepted p99 went to 518 ms at twice the sustainable rate,
bench/results/2026-12-02d) and nothing at 10,000/s. `min_backlog` stays as a floor, so a
handful of messages behind one slow batch never sheds.

Counts are per process: in the monolith the router that admits is the one that delivers.
In the split deployment each router sees only what it delivers, which still sheds a
router whose deliveries fall behind (a bound, if a looser one).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.common.errors import Busy
from services.common.metrics import SENDS_SHED
from services.common.model import Message, now_ms

__all__ = ["Backlog"]

_RATE_WINDOW_S = 0.25


class Backlog:
    __slots__ = ("max_lag_ms", "max_queue_ms", "min_backlog", "max_backlog", "waiting", "lag_ms", "rate", "shed",
                 "_lag_at", "_counted", "_window_at", "__weakref__")

    def __init__(self, *, max_lag_ms: float = 50.0, max_queue_ms: float = 75.0, min_backlog: int = 20,
                 max_backlog: int = 20_000) -> None:
        """Shed when deliveries run `max_lag_ms` behind their sends and the admitted messages
        waiting (at least `min_backlog`) would take `max_queue_ms` to hand over at the recent
        delivery rate, or whenever `max_backlog` wait (delivery stalled)."""
        self.max_lag_ms = max_lag_ms
        self.max_queue_ms = max_queue_ms
        self.min_backlog = min_backlog
        self.max_backlog = max_backlog
        self.waiting = 0  # admitted, not yet delivered
        self.lag_ms = 0.0  # send -> delivery of the newest message delivered
        self.rate = 0.0  # messages/s handed to the gateways lately (the upper envelope)
        self.shed = 0
        self._lag_at = time.monotonic()
        self._counted = 0  # delivered since _window_at
        self._window_at = self._lag_at
        _LIVE.add(self)

    def admitted(self) -> None:
        self.waiting += 1

    def delivered(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        self.waiting = max(0, self.waiting - len(messages))
        self.lag_ms = max(0, now_ms() - messages[-1].created_at)
        self._lag_at = now = time.monotonic()
        self._counted += len(messages)
        elapsed = now - self._window_at
        if elapsed > 4 * _RATE_WINDOW_S:
            # A quiet spell is not a slow delivery: start a fresh window at this batch.
            self._counted, self._window_at = 0, now
        elif elapsed >= _RATE_WINDOW_S:
            fresh = self._counted / elapsed
            # The rate stands for what delivery can do, and a window of few sends measures
            # only how few came: it follows a rise at once and a fall by a quarter a window.
            self.rate = fresh if fresh >= self.rate else (3 * self.rate + fresh) / 4
            self._counted, self._window_at = 0, now

    def queue_ms(self) -> float:
        """How long a message admitted now would wait behind the others (inf: no rate yet)."""
        return self.waiting * 1000 / self.rate if self.rate > 0 else float("inf")

    def check(self) -> None:
        """Busy (with retry_after) when delivery is too far behind to take another send."""
        if self.waiting < self.min_backlog:
            return
        # The lag is that of the last delivered batch; when nothing was delivered since,
        # the wait so far counts too (a stalled delivery has no fresh lag to report).
        lag_ms = max(self.lag_ms, (time.monotonic() - self._lag_at) * 1000)
        if self.waiting < self.max_backlog and (lag_ms < self.max_lag_ms or self.queue_ms() < self.max_queue_ms):
            return
        self.shed += 1
        SENDS_SHED.labels("delivery").inc()
        retry_after = round(min(5.0, max(0.05, lag_ms / 1000)), 3)
        raise Busy(f"overloaded: {self.waiting} messages wait for delivery; retry after {retry_after} s",
                   retry_after=retry_after)


_LIVE: weakref.WeakSet[Backlog] = weakref.WeakSet()


class _BacklogCollector(Collector):
    """Read at scrape time (as services.common.bounds): a Gauge set per message takes a lock."""

    def collect(self):  # type: ignore[override]
        live = list(_LIVE)
        waiting = GaugeMetricFamily("flare_delivery_backlog_messages",
                                    "Admitted messages not yet handed to the gateways (load shedding's backlog)")
        waiting.add_metric([], sum(b.waiting for b in live))
        queue = GaugeMetricFamily("flare_delivery_queue_seconds",
                                  "How long a send admitted now would wait behind that backlog, at the recent rate")
        finite = [b.queue_ms() for b in live if b.rate > 0]
        queue.add_metric([], max(finite, default=0.0) / 1000)
        yield waiting
        yield queue


REGISTRY.register(_BacklogCollector())
