"""TUI frame time and memory with N synthetic instances at 1 Hz.

A real Aggregator (fake clock) over N hub Sessions makes the updates the daemon would send
(every instance's rates move every second, so every row changes); each is folded with
apply_changes and posted to a headless FlareTui at 80x24 on the overview. A frame is the
time from posting the picture until the app is idle again (handler, table cell updates,
sparklines, compositing). Prints JSON: frame p50/p99 ms, RSS before/after, and the
NACK-to-alert figure is in tests/tui/test_tui_drills.py (printed with -s).

    python bench/tui_bench.py [--instances 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controlplane.aggregate import Aggregator, apply_changes  # noqa: E402
from controlplane.messages import Hello  # noqa: E402
from controlplane.sessions import Session  # noqa: E402
from flarectl.tui.app import FlareTui  # noqa: E402
from flarectl.tui.messages import PictureUpdated  # noqa: E402
from services.common.documents import StoredDocument  # noqa: E402


class _Desired:
    served = {"routing": StoredDocument(kind="routing", version=1, spec={}, digest="d1")}


class _Hub:
    sessions: dict = {}


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 2)


async def run(instances: int, seconds: int) -> dict:
    now = [0.0]
    agg = Aggregator(_Hub(), _Desired(), clock=lambda: now[0], wall=lambda: 1796158800.0 + now[0])
    sessions = []
    for i in range(instances):
        service = ("gateway", "router", "store", "filter")[i % 4]
        session = Session(Hello(service=service, instance_id=f"{service}-{i}", address=f"10.0.{i // 250}.{i % 250}:9",
                                kinds=("routing",)))
        session.running["routing"] = (1, "d1")
        sessions.append(session)
        agg.attached(session)
    rss_before = _rss_mb()
    app = FlareTui(address="127.0.0.1:1", token=None)
    app.follow = lambda: None  # no live link: this bench feeds pictures itself
    frames: list[float] = []
    changed: list[int] = []
    picture = None
    sent: dict = {}
    log_seq = 0
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for second in range(seconds + 1):
            started_second = time.perf_counter()
            now[0] = float(second)
            for i, session in enumerate(sessions):
                wobble = (second * 7 + i) % 13  # rates move every second, so every row changes
                agg.summary(session, {"c": {"in": float(second * (20 + i % 30) + wobble)}, "g": {"conn": i % 9}, "lag": {},
                                      "h": {}})
            agg.tick()
            if second == 0:
                update = agg.snapshot()
                sent, log_seq = dict(agg.rows), agg._log_seq
            else:
                update, sent, log_seq = agg.changes_since(sent, log_seq)
            changed.append(len(update["instances"]))
            picture = apply_changes(picture, update)
            started = time.perf_counter()
            app.post_message(PictureUpdated(picture))
            await pilot.pause()
            frames.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - started_second)))
        rss_after = _rss_mb()
    steady = frames[1:] or frames
    return {"instances": instances, "updates": len(frames), "rows_changed_per_update": statistics.median(changed[1:] or changed),
            "first_frame_ms": round(frames[0], 2), "frame_ms": {"p50": _pct(steady, 0.5), "p99": _pct(steady, 0.99),
                                                               "mean": round(statistics.mean(steady), 2)},
            "handler_ms_p50": _pct(app.frame_times[1:] or app.frame_times, 0.5),
            "rss_mb": {"before_app": round(rss_before, 1), "with_app": round(rss_after, 1)}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.instances, args.seconds)), indent=2))


if __name__ == "__main__":
    main()
