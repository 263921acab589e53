"""A log-bucketed latency histogram in the HDR style: bounded relative error, mergeable.

Values are non-negative integers (the load test records microseconds). Below 2**precision
every value has its own bucket; above, each power-of-two range is split into 2**precision
equal sub-buckets, so a reported percentile is at most 2**-precision above the true one
(0.8 % with the default precision 7). Buckets live in a dict, so a histogram costs only
the buckets it uses, pickles small, and two histograms merge by adding counts — which is
how worker processes' histograms are combined.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["LatencyHistogram"]


class LatencyHistogram:
    __slots__ = ("precision", "counts", "count", "total", "min", "max")

    def __init__(self, precision: int = 7) -> None:
        if not 1 <= precision <= 16:
            raise ValueError("precision must be between 1 and 16 bits")
        self.precision = precision
        self.counts: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.min: int | None = None
        self.max: int | None = None

    # -- recording -----------------------------------------------------------------------

    def bucket_index(self, value: int) -> int:
        shift = value.bit_length() - 1 - self.precision
        if shift <= 0:
            return value
        return (shift << self.precision) + (value >> shift)

    def bucket_upper(self, index: int) -> int:
        """The highest value that lands in bucket `index` (what percentiles report)."""
        if index < (2 << self.precision):
            return index
        shift = (index >> self.precision) - 1
        sub = index - (shift << self.precision)
        return ((sub + 1) << shift) - 1

    def record(self, value: int | float, count: int = 1) -> None:
        value = max(0, int(value))
        index = self.bucket_index(value)
        self.counts[index] = self.counts.get(index, 0) + count
        self.count += count
        self.total += value * count
        self.min = value if self.min is None else min(self.min, value)
        self.max = value if self.max is None else max(self.max, value)

    def record_many(self, values: Iterable[int | float]) -> None:
        for value in values:
            self.record(value)

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        if other.precision != self.precision:
            raise ValueError("cannot merge histograms of different precision")
        for index, n in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        if other.min is not None:
            self.min = other.min if self.min is None else min(self.min, other.min)
        if other.max is not None:
            self.max = other.max if self.max is None else max(self.max, other.max)
        return self

    # -- reading -------------------------------------------------------------------------

    def percentile(self, pct: float) -> int | None:
        """Nearest-rank percentile, reported as its bucket's highest value (capped at max)."""
        if not 0 <= pct <= 100:
            raise ValueError("percentile must be within 0..100")
        if self.count == 0:
            return None
        rank = max(1, math.ceil(pct / 100 * self.count))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                upper = self.bucket_upper(index)
                return min(upper, self.max) if self.max is not None else upper
        return self.max

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def summary(self, *, scale: float = 1.0, digits: int = 3) -> dict[str, float | int | None]:
        """p50/p90/p99/p99.9/max (divided by `scale`, e.g. 1000 for µs → ms) and the count."""

        def scaled(v: float | None) -> float | None:
            return None if v is None else round(v / scale, digits)

        return {
            "count": self.count,
            "p50": scaled(self.percentile(50)),
            "p90": scaled(self.percentile(90)),
            "p99": scaled(self.percentile(99)),
            "p99_9": scaled(self.percentile(99.9)),
            "max": scaled(self.max),
            "mean": scaled(self.mean),
        }

    # -- transport -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        return {
            "precision": self.precision, "counts": dict(self.counts), "count": self.count,
            "total": self.total, "min": self.min, "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: dict) -> LatencyHistogram:
        hist = cls(int(data["precision"]))
        hist.counts = {int(k): int(v) for k, v in dict(data["counts"]).items()}
        hist.count = int(data["count"])
        hist.total = int(data["total"])
        hist.min = data["min"]
        hist.max = data["max"]
        return hist

    def __repr__(self) -> str:
        return f"LatencyHistogram(count={self.count}, p50={self.percentile(50)}, p99={self.percentile(99)}, max={self.max})"
