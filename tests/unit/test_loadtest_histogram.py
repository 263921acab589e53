"""The load test's latency histogram: percentiles within the bucket error, and merging."""

from __future__ import annotations

import math
import random

import pytest

from flarectl.loadtest.histogram import LatencyHistogram

PERCENTILES = (0, 1, 50, 90, 99, 99.9, 100)


def nearest_rank(sorted_values: list[int], pct: float) -> int:
    return sorted_values[max(1, math.ceil(pct / 100 * len(sorted_values))) - 1]


def assert_close(hist: LatencyHistogram, values: list[int]) -> None:
    ordered = sorted(values)
    bound = 2.0 ** -hist.precision
    for pct in PERCENTILES:
        true = nearest_rank(ordered, pct)
        reported = hist.percentile(pct)
        assert true <= reported <= true + max(1, true * bound), (pct, true, reported)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_match_sorted_data_within_bucket_error(seed: int) -> None:
    rng = random.Random(seed)
    values = [int(rng.lognormvariate(8, 2)) for _ in range(20_000)] + [0, 1, 2**40]
    hist = LatencyHistogram()
    hist.record_many(values)
    assert hist.count == len(values)
    assert hist.min == 0 and hist.max == 2**40
    assert_close(hist, values)


def test_small_values_are_exact() -> None:
    hist = LatencyHistogram(precision=7)
    hist.record_many(range(1, 201))
    assert hist.percentile(50) == 100
    assert hist.percentile(100) == 200
    assert hist.summary()["p99"] == 198


def test_every_value_lands_in_a_bucket_that_contains_it() -> None:
    hist = LatencyHistogram(precision=4)
    previous = -1
    for value in range(0, 70_000):
        index = hist.bucket_index(value)
        assert index >= previous  # monotonic
        previous = index
        assert hist.bucket_upper(index) >= value
        assert hist.bucket_index(hist.bucket_upper(index)) == index


def test_merge_equals_recording_everything_in_one() -> None:
    rng = random.Random(7)
    parts = [[int(rng.expovariate(1 / 5000)) for _ in range(3000)] for _ in range(4)]
    merged = LatencyHistogram()
    for part in parts:
        h = LatencyHistogram()
        h.record_many(part)
        merged.merge(LatencyHistogram.from_dict(h.to_dict()))  # as it travels from a worker
    whole = LatencyHistogram()
    whole.record_many(v for part in parts for v in part)
    assert merged.counts == whole.counts
    assert (merged.count, merged.total, merged.min, merged.max) == (whole.count, whole.total, whole.min, whole.max)
    assert_close(merged, [v for part in parts for v in part])


def test_empty_and_invalid() -> None:
    hist = LatencyHistogram()
    assert hist.percentile(99) is None
    assert hist.summary()["p50"] is None and hist.summary()["count"] == 0
    with pytest.raises(ValueError):
        hist.percentile(101)
    with pytest.raises(ValueError):
        hist.merge(LatencyHistogram(precision=3))


def test_summary_scales_to_milliseconds() -> None:
    hist = LatencyHistogram()
    hist.record_many([1000, 2000, 3000, 4000])  # µs
    summary = hist.summary(scale=1000)
    assert summary["p50"] == pytest.approx(2.0, rel=0.01)
    assert summary["max"] == 4.0
    assert summary["mean"] == 2.5
