"""What one instance tells the control plane about itself every second (ARCHITECTURE §7a).

A summary holds cumulative counters, gauges and histogram bucket counts read from this
process's Prometheus collectors (`metrics.py`), never rates: the control plane derives
rates and percentiles from two summaries, so a lost or late one costs resolution, not
correctness. In the monolith every service shares one registry, so each service reports
only the metrics its own code moves (`SERVICE_METRICS`); a split process holds one
service, where the same selection is simply everything it has.

    summary = summarize("gateway")   # {"c": {...}, "g": {...}, "lag": {...}, "h": {...}}
"""

from __future__ import annotations

from collections.abc import Callable

from . import metrics

__all__ = ["LATENCY_BUCKETS", "SERVICE_METRICS", "summarize", "summary_source"]

LATENCY_BUCKETS = metrics.LATENCY_BUCKETS

# Which metric families each service's own code moves; a service not named reports all.
SERVICE_METRICS: dict[str, frozenset[str]] = {
    "gateway": frozenset({"in", "conn", "err", "received"}),
    "router": frozenset({"stored", "out", "delivered", "deliveries", "err", "retry"}),
    "store": frozenset({"stored_msgs", "lag", "dedup"}),
    "filter": frozenset(),
    "session": frozenset(),
    "sync": frozenset(),
}
_ALL = frozenset({"in", "conn", "err", "received", "stored", "out", "delivered", "deliveries", "retry",
                  "stored_msgs", "lag", "dedup"})


def _counter_total(counter) -> float:
    return sum(s.value for family in counter.collect() for s in family.samples if s.name.endswith("_total"))


def _buckets(child) -> list[int]:
    # Cumulative counts per upper bound (the +Inf bucket last), from a labelled histogram child.
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    index = 0
    for family in child.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket") and index < len(counts):
                counts[index] = int(sample.value)
                index += 1
    return counts


def summarize(service: str, *, extra: dict[str, float] | None = None) -> dict:
    """This process's numbers for `service` (see the module docstring for the shape)."""
    wanted = SERVICE_METRICS.get(service, _ALL)
    counters: dict[str, float] = {}
    gauges: dict[str, float] = {}
    histograms: dict[str, list[int]] = {}
    lag: dict[str, float] = {}
    if "in" in wanted:
        counters["in"] = _counter_total(metrics.MESSAGES_IN)
    if "out" in wanted:
        counters["out"] = _counter_total(metrics.MESSAGES_OUT)
    if "err" in wanted:
        counters["err"] = (_counter_total(metrics.FRAME_ERRORS) if service == "gateway"
                           else _counter_total(metrics.DELIVERY_FAILURES))
    if "retry" in wanted:
        counters["retry"] = _counter_total(metrics.RETRIES)
    if "dedup" in wanted:
        counters["dedup"] = _counter_total(metrics.DEDUP_HITS)
    if "stored_msgs" in wanted:
        counters["in"] = sum(s.value for family in metrics.STORE_BATCH.collect() for s in family.samples
                             if s.name.endswith("_sum"))
    if "conn" in wanted:
        gauges["conn"] = sum(s.value for family in metrics.CONNECTIONS.collect() for s in family.samples)
    if "lag" in wanted:
        for family in metrics.LOG_LAG.collect():
            for sample in family.samples:
                lag[sample.labels.get("partition", "")] = sample.value
    for name, child in (("received", metrics.ACK_RECEIVED), ("stored", metrics.ACK_STORED),
                        ("delivered", metrics.ACK_DELIVERED)):
        if name in wanted:
            histograms[name] = _buckets(child)
    if "deliveries" in wanted:
        counters["deliveries"] = histograms.get("delivered", [0])[-1]
    if extra:
        gauges.update(extra)
    return {"c": counters, "g": gauges, "lag": lag, "h": histograms}


def summary_source(service: str) -> Callable[[], dict]:
    """A zero-argument callable for `ConfigAgent(summary=…)`."""
    return lambda: summarize(service)
