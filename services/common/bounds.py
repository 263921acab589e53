"""Byte budgets for in-memory structures, and their Prometheus view.

Every structure that holds message-sized values in memory (the file log's tail, the
embedded cache, a connection's outbound queue …) owns a `ByteBudget`: it adds what it
keeps, subtracts what it drops, and evicts its oldest entries while `over()`. Sizes are
estimates — payload bytes plus `ENTRY_OVERHEAD` per entry for the Python objects around
them — close enough for a cap to bound RSS, cheap enough to keep on the hot path.

Scraped as `flare_memory_bytes{structure}`, `flare_memory_limit_bytes{structure}` and
`flare_memory_evictions_total{structure}`: plain ints summed over the live budgets at
scrape time, since a prometheus_client Gauge.inc takes a lock on every message.
"""

from __future__ import annotations

import weakref

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["ByteBudget", "ENTRY_OVERHEAD", "MiB"]

MiB = 1024 * 1024
# A tuple, a bytes object and a dict/deque slot cost about this much beyond the payload
# (CPython 3.11, 64-bit): measured with tracemalloc on the log tail, rounded up.
ENTRY_OVERHEAD = 160


class ByteBudget:
    """What one structure may hold, what it holds, and how often it had to drop something."""

    __slots__ = ("structure", "limit", "used", "evictions", "__weakref__")

    def __init__(self, structure: str, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"{structure}: a byte limit cannot be negative")
        self.structure = structure
        self.limit = limit
        self.used = 0
        self.evictions = 0
        _LIVE.add(self)

    def over(self) -> bool:
        return self.used > self.limit

    def __repr__(self) -> str:
        return f"ByteBudget({self.structure!r}, used={self.used}, limit={self.limit}, evictions={self.evictions})"


_LIVE: weakref.WeakSet[ByteBudget] = weakref.WeakSet()


class _BoundsCollector(Collector):
    def collect(self):  # type: ignore[override]
        used: dict[str, int] = {}
        limit: dict[str, int] = {}
        evictions: dict[str, int] = {}
        for budget in list(_LIVE):
            used[budget.structure] = used.get(budget.structure, 0) + budget.used
            limit[budget.structure] = limit.get(budget.structure, 0) + budget.limit
            evictions[budget.structure] = evictions.get(budget.structure, 0) + budget.evictions
        used_family = GaugeMetricFamily("flare_memory_bytes", "Estimated bytes held by a bounded in-memory structure",
                                        labels=["structure"])
        limit_family = GaugeMetricFamily("flare_memory_limit_bytes", "Byte cap of a bounded in-memory structure",
                                         labels=["structure"])
        evicted_family = CounterMetricFamily("flare_memory_evictions", "Entries dropped to stay under a byte cap",
                                             labels=["structure"])
        for structure in sorted(used):
            used_family.add_metric([structure], used[structure])
            limit_family.add_metric([structure], limit[structure])
            evicted_family.add_metric([structure], evictions[structure])
        return [used_family, limit_family, evicted_family]


REGISTRY.register(_BoundsCollector())
