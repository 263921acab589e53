"""A short rolling window of one instance's summaries, and what it derives from them.

Summaries carry cumulative numbers (services/common/metrics_summary.py), so a rate is the
difference of two samples over their time apart and a percentile comes from the difference
of two histograms: a lost summary widens the span, it never makes a number wrong. A counter
that went down means the process restarted; the window then starts over.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from services.common.metrics_summary import LATENCY_BUCKETS

__all__ = ["Sample", "InstanceWindow", "percentile_ms"]

RATE_SPAN_S = 10.0  # rates and percentiles are over the last ten seconds
SPARK_POINTS = 120  # two minutes of per-second points for sparklines


@dataclass(slots=True)
class Sample:
    t: float  # monotonic seconds at the control plane when it arrived
    counters: dict[str, float]
    gauges: dict[str, float]
    lag: dict[str, float]
    histograms: dict[str, list[int]]


def percentile_ms(counts: list[int], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding quantile `q` of a non-cumulative-diffed
    cumulative histogram; None with no observations. Past the last bound: that bound."""
    total = counts[-1] if counts else 0
    if total <= 0:
        return None
    rank = q * total
    for bound, count in zip(LATENCY_BUCKETS, counts):
        if count >= rank:
            return bound * 1000
    return LATENCY_BUCKETS[-1] * 1000


class InstanceWindow:
    def __init__(self, *, max_samples: int = 300) -> None:
        self.samples: deque[Sample] = deque(maxlen=max_samples)
        self.spark_in: deque[float] = deque(maxlen=SPARK_POINTS)
        self.spark_p99: deque[float] = deque(maxlen=SPARK_POINTS)
        self.lag_totals: deque[float] = deque(maxlen=8)

    def add(self, t: float, summary: dict) -> None:
        sample = Sample(t=t, counters=dict(summary.get("c") or {}), gauges=dict(summary.get("g") or {}),
                        lag=dict(summary.get("lag") or {}), histograms=dict(summary.get("h") or {}))
        if self.samples and any(sample.counters.get(k, 0) < v for k, v in self.samples[-1].counters.items()):
            self.samples.clear()  # the process restarted: its counters began again at zero
        previous = self.samples[-1] if self.samples else None
        self.samples.append(sample)
        if previous is not None and sample.t > previous.t:
            dt = sample.t - previous.t
            self.spark_in.append(round((sample.counters.get("in", 0) - previous.counters.get("in", 0)) / dt, 2))
            p99 = self._latency_between(previous, sample, "delivered", 0.99)
            if p99 is None:
                p99 = self._latency_between(previous, sample, "stored", 0.99)
            self.spark_p99.append(p99 or 0.0)
        self.lag_totals.append(sum(sample.lag.values()))

    def _oldest_within(self, span: float) -> Sample | None:
        if len(self.samples) < 2:
            return None
        newest = self.samples[-1]
        oldest = self.samples[-2]
        for sample in reversed(self.samples):
            if newest.t - sample.t > span:
                break
            oldest = sample
        return oldest if oldest is not newest else None

    def rates(self, span: float = RATE_SPAN_S) -> dict[str, float]:
        oldest = self._oldest_within(span)
        if oldest is None:
            return {}
        newest = self.samples[-1]
        dt = newest.t - oldest.t
        if dt <= 0:
            return {}
        return {name: round((value - oldest.counters.get(name, 0)) / dt, 2) for name, value in newest.counters.items()}

    @staticmethod
    def _latency_between(old: Sample, new: Sample, name: str, q: float) -> float | None:
        after, before = new.histograms.get(name), old.histograms.get(name)
        if not after:
            return None
        diff = [a - b for a, b in zip(after, before)] if before and len(before) == len(after) else list(after)
        return percentile_ms(diff, q)

    def latencies(self, span: float = RATE_SPAN_S) -> dict[str, float]:
        oldest = self._oldest_within(span)
        if oldest is None:
            return {}
        newest = self.samples[-1]
        out: dict[str, float] = {}
        for name in newest.histograms:
            for label, q in (("p50", 0.5), ("p99", 0.99)):
                value = self._latency_between(oldest, newest, name, q)
                if value is not None:
                    out[f"{name}_{label}"] = value
        return out

    def lag_growing(self, *, min_lag: float, points: int = 5) -> bool:
        """Over the last `points` summaries lag never fell, rose overall, and is at least
        `min_lag` (two summaries between the same produce bursts may show the same lag)."""
        if len(self.lag_totals) < points:
            return False
        recent = list(self.lag_totals)[-points:]
        return recent[-1] >= min_lag and recent[-1] > recent[0] and all(b >= a for a, b in zip(recent, recent[1:]))

    def stalled_s(self, counter: str = "in") -> float:
        """How long lag has stood above zero while `counter` (the consumer's records handled)
        did not move: a consumer that stopped. Load shedding stops the log growing behind it
        (sends get `busy`), so a stopped consumer's lag goes flat, not up: `lag_growing` alone
        would miss it. Zero while the counter moves or nothing lags."""
        newest = self.samples[-1] if self.samples else None
        value = newest.counters.get(counter) if newest is not None else None
        if value is None:
            return 0.0
        since = newest
        for sample in reversed(self.samples):
            # Only the span with lag: an idle consumer (count still, nothing lagging) whose
            # first record is read as lag before it is consumed has not stalled for the idle time.
            if sample.counters.get(counter) != value or not sum(sample.lag.values()):
                break
            since = sample
        return newest.t - since.t

    @property
    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None
