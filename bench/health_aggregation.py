"""What the aggregated picture costs the control plane with N synthetic instances at 1 Hz.

A real daemon (embedded SQLite store) with N sessions attached to its hub, each pushing a
router-shaped summary (five counters, three 14-bucket histograms, a lag map) once a second,
the aggregator ticking once a second, and one watcher folding the change stream as flarectl
and the TUI do. Reports CPU seconds per wall second for: receiving summaries (JSON decode of
the bytes the gRPC stream carries, then the window), the ticks (rows + alerts), the watcher's
diffs, and the whole process. Prints JSON.

    python bench/health_aggregation.py [--instances 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controlplane.aggregate import apply_changes  # noqa: E402
from controlplane.daemon import ControlPlane  # noqa: E402
from controlplane.messages import Hello  # noqa: E402
from services.backends.registry import open_configstore  # noqa: E402
from services.common import codec  # noqa: E402
from services.common.metrics_summary import LATENCY_BUCKETS  # noqa: E402


def synthetic_summary(i: int, second: int) -> bytes:
    rate = 20 + i % 50
    buckets = [0] * (len(LATENCY_BUCKETS) + 1)
    total = rate * second
    for b in range(len(buckets)):
        buckets[b] = int(total * min(1.0, (b + 1) / 6))
    return codec.dumps({"c": {"in": float(total), "out": float(total * 2), "err": float(second // 10),
                              "retry": 0.0, "deliveries": float(total)},
                        "g": {"conn": 100 + i % 7}, "lag": {str(p): float(random.randint(0, 5)) for p in range(4)},
                        "h": {"received": buckets, "stored": buckets, "delivered": buckets}})


async def run(instances: int, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cp = ControlPlane(open_configstore(f"sqlite:///{tmp}/config.db"), b"bench-secret")
        await cp.start()
        sessions = [await cp.hub.attach(Hello(service=("gateway", "router", "store", "filter")[i % 4],
                                              instance_id=f"i-{i}", address=f"10.0.{i // 250}.{i % 250}:9000",
                                              kinds=("routing",) if i % 4 == 1 else ()))
                    for i in range(instances)]
        receive_cpu = 0.0
        watch_cpu = 0.0
        updates = 0

        async def watcher() -> None:
            nonlocal watch_cpu, updates
            picture = None
            async for update in cp.aggregator.updates():
                started = time.process_time()
                picture = apply_changes(picture, codec.loads(codec.dumps(update)))  # the wire round-trip too
                watch_cpu += time.process_time() - started
                updates += 1

        watch_task = asyncio.create_task(watcher())
        await asyncio.sleep(1.5)  # first ticks, store view
        cpu0, wall0, agg0 = time.process_time(), time.perf_counter(), cp.aggregator.cpu_s
        watch_cpu = 0.0
        second = 0
        while time.perf_counter() - wall0 < seconds:
            second += 1
            tick_start = time.perf_counter()
            # spread over the second as real instances' timers are
            for chunk in range(10):
                started = time.process_time()
                for i in range(chunk, instances, 10):
                    cp.hub.summary(sessions[i], codec.loads(synthetic_summary(i, second)))
                receive_cpu += time.process_time() - started
                await asyncio.sleep(max(0.0, tick_start + (chunk + 1) * 0.1 - time.perf_counter()))
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        agg = cp.aggregator.cpu_s - agg0
        watch_task.cancel()
        rows = len(cp.aggregator.rows)
        await cp.stop()
    # receive_cpu includes the window's share of agg (summary()); ticks are the rest
    synthetic_build = 0.0  # building the synthetic bytes is inside receive_cpu; measure it alone
    started = time.process_time()
    for i in range(instances):
        synthetic_summary(i, 1)
    synthetic_build = (time.process_time() - started) * second
    return {"instances": instances, "rows": rows, "seconds": round(wall, 2), "watch_updates": updates,
            "cpu_per_s": {
                "receive_summaries": round((receive_cpu - synthetic_build) / wall, 4),
                "aggregate_ticks_and_windows": round(agg / wall, 4),
                "watcher_diff_and_fold": round(watch_cpu / wall, 4),
                "whole_process_incl_synthetic_load": round(cpu / wall, 4)}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.instances, args.seconds)), indent=2))


if __name__ == "__main__":
    main()
