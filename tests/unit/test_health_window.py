"""The rolling window: rates and percentiles from cumulative summaries, restarts, lag trend."""

from __future__ import annotations

from controlplane.aggregate import apply_changes
from controlplane.window import InstanceWindow, percentile_ms
from services.common.metrics_summary import LATENCY_BUCKETS, summarize


def _hist(values_ms: list[float]) -> list[int]:
    counts = [0] * (len(LATENCY_BUCKETS) + 1)
    for value in values_ms:
        for i, bound in enumerate(LATENCY_BUCKETS):
            if value / 1000 <= bound:
                for j in range(i, len(counts)):
                    counts[j] += 1
                break
        else:
            counts[-1] += 1
    return counts


def test_rates_are_counter_differences_over_the_last_ten_seconds():
    window = InstanceWindow()
    for second in range(30):
        window.add(float(second), {"c": {"in": second * 50.0, "err": second * 2.0}})
    rates = window.rates()
    assert rates == {"in": 50.0, "err": 2.0}
    assert list(window.spark_in)[-3:] == [50.0, 50.0, 50.0]


def test_a_lost_summary_widens_the_span_and_keeps_the_rate_right():
    window = InstanceWindow()
    for second in (0, 1, 2, 6, 7):  # 3..5 never arrived
        window.add(float(second), {"c": {"in": second * 10.0}})
    assert window.rates()["in"] == 10.0


def test_a_counter_going_down_means_a_restart_and_the_window_starts_over():
    window = InstanceWindow()
    window.add(0.0, {"c": {"in": 1000.0}})
    window.add(1.0, {"c": {"in": 1100.0}})
    window.add(2.0, {"c": {"in": 5.0}})
    assert window.rates() == {}  # one sample since the restart: no rate yet, never a negative one
    window.add(3.0, {"c": {"in": 25.0}})
    assert window.rates()["in"] == 20.0


def test_percentiles_come_from_the_histogram_difference_within_the_window():
    window = InstanceWindow()
    window.add(0.0, {"h": {"delivered": _hist([1500.0] * 100)}})  # old and slow: outside the diff
    window.add(1.0, {"h": {"delivered": [a + b for a, b in zip(_hist([1500.0] * 100), _hist([3.0] * 99 + [180.0]))]}})
    latency = window.latencies()
    assert latency["delivered_p50"] == 5.0  # the bucket bound holding 3 ms
    assert latency["delivered_p99"] == 5.0
    assert percentile_ms(_hist([3.0] * 98 + [180.0] * 2), 0.99) == 200.0
    assert percentile_ms([0] * (len(LATENCY_BUCKETS) + 1), 0.5) is None


def test_lag_growing_needs_no_fall_a_net_rise_and_a_floor():
    window = InstanceWindow()
    for second, lag in enumerate([10, 60, 120, 200, 260]):
        window.add(float(second), {"lag": {"0": lag, "1": 0}})
    assert window.lag_growing(min_lag=50, points=5)
    window.add(5.0, {"lag": {"0": 260, "1": 0}})  # the same twice between bursts: still growing
    assert window.lag_growing(min_lag=50, points=5)
    window.add(6.0, {"lag": {"0": 250, "1": 0}})  # drained a little: not growing
    assert not window.lag_growing(min_lag=50, points=5)
    small = InstanceWindow()
    for second, lag in enumerate([1, 2, 3, 4, 5]):
        small.add(float(second), {"lag": {"0": lag}})
    assert not small.lag_growing(min_lag=50, points=5)


def test_stalled_counts_how_long_lag_stood_with_nothing_consumed():
    window = InstanceWindow()
    for second, (consumed, lag) in enumerate([(10, 0), (20, 3), (20, 3), (20, 21), (20, 21), (20, 21)]):
        window.add(float(second), {"c": {"in": consumed}, "lag": {"0": lag}})
    assert window.stalled_s() == 4.0  # since the sample at 1 s, the last with a different count
    assert not window.lag_growing(min_lag=50, points=5)  # flat and small: the other rule misses it
    window.add(6.0, {"c": {"in": 25}, "lag": {"0": 16}})  # it consumed again
    assert window.stalled_s() == 0.0
    idle = InstanceWindow()
    for second in range(6):  # nothing sent, nothing lags: idle, not stalled
        idle.add(float(second), {"c": {"in": 7}, "lag": {"0": 0}})
    assert idle.stalled_s() == 0.0
    idle.add(6.0, {"c": {"in": 7}, "lag": {"0": 1}})  # a record read as lag before it is consumed
    assert idle.stalled_s() == 0.0  # not a stall of the 6 idle seconds before it
    idle.add(8.0, {"c": {"in": 7}, "lag": {"0": 1}})
    assert idle.stalled_s() == 2.0  # lag has stood since 6 s with nothing consumed


def test_apply_changes_folds_updates_and_moves_every_sparkline():
    snapshot = {"type": "snapshot", "seq": 1, "instances": [
        {"id": "gateway/gw-1", "service": "gateway", "rates": {"in": 5.0}, "spark": {"in": [4.0], "p99": [0.0]}},
        {"id": "store/store-1", "service": "store", "rates": {"in": 1.0}, "spark": {"in": [], "p99": []}}],
        "alerts": [], "alert_log": []}
    picture = apply_changes(None, snapshot)
    picture = apply_changes(picture, {"type": "changes", "seq": 2, "removed": ["store/store-1"], "alerts": [],
                                      "alert_log": [{"event": "fired", "alert": "DOWN"}],
                                      "instances": [{"id": "gateway/gw-1", "service": "gateway",
                                                     "rates": {"in": 7.0}}]})
    assert list(picture["rows"]) == ["gateway/gw-1"]
    assert picture["rows"]["gateway/gw-1"]["spark"]["in"] == [4.0, 7.0]
    assert picture["alert_log"] == [{"event": "fired", "alert": "DOWN"}]


def test_each_monolith_service_reports_only_its_own_numbers():
    assert set(summarize("gateway")["c"]) == {"in", "err"} and "conn" in summarize("gateway")["g"]
    assert set(summarize("store")["c"]) == {"in", "dedup"}
    assert summarize("filter") == {"c": {}, "g": {}, "lag": {}, "h": {}}
    assert set(summarize("router")["h"]) == {"stored", "delivered"}
