"""A deterministic incident, recorded the way `flarectl tui --record` records: a real
Aggregator on a fake clock over real hub Sessions, so the rows, alerts and log are exactly
what the daemon would serve. Timeline (seconds from 21:00:00 UTC): traffic from the start;
at 5 filter-2 NACKs filter-rules v2; at 8 the store's consumer stops (lag grows); at 14
router-1's stream drops (DOWN); at 20 the NACK is fixed by v3."""

from __future__ import annotations

from pathlib import Path

from controlplane.aggregate import AlertRules, Aggregator
from controlplane.messages import Hello
from controlplane.sessions import Session
from flarectl.tui.source import Recorder
from services.common.documents import StoredDocument

START = 1796158800.0  # 2026-12-01 21:00:00 UTC


class _Desired:
    def __init__(self) -> None:
        self.served: dict[str, StoredDocument] = {}

    def serve(self, kind: str, version: int) -> None:
        self.served[kind] = StoredDocument(kind=kind, version=version, spec={}, digest=f"d{version}")


class _Hub:
    def __init__(self) -> None:
        self.sessions: dict = {}


def _hist(count: int, fast: float = 0.8) -> list[int]:
    # cumulative counts over the 13 bounds + Inf: most under 5 ms, a tail to 50 ms
    quick = int(count * fast)
    return [0, 0, int(quick * 0.2), quick, quick, int(count * 0.97), count, count, count, count, count, count, count,
            count]


def make_recording(path: Path, *, seconds: int = 30, instances: int = 0) -> Path:
    now = [0.0]
    desired, hub = _Desired(), _Hub()
    desired.serve("filter-rules", 1)
    desired.serve("tiering", 1)
    desired.serve("routing", 1)
    agg = Aggregator(hub, desired, rules=AlertRules(lag_min_records=50, lag_points=4),
                     clock=lambda: now[0], wall=lambda: START + now[0])
    plan = [("gateway", "gw-1", ()), ("router", "router-1", ("routing",)), ("store", "store-1", ("tiering",)),
            ("filter", "filter-1", ("filter-rules",)), ("filter", "filter-2", ("filter-rules",)),
            ("session", "session-1", ("routing",))]
    plan += [("gateway", f"gw-{i + 2}", ()) for i in range(instances)]
    sessions = {}
    for service, instance_id, kinds in plan:
        hello = Hello(service=service, instance_id=instance_id, address=f"10.0.0.{len(sessions) + 1}:9000",
                      kinds=kinds, started_at="2026-12-01T20:55:00.000Z", software_version="0.1.0")
        session = Session(hello)
        for kind in kinds:
            doc = desired.served[kind]
            session.running[kind] = (doc.version, doc.digest)
        hub.sessions[(service, instance_id)] = session
        sessions[f"{service}/{instance_id}"] = session
        agg.attached(session)
    recorder = Recorder(path)
    sent: dict = {}
    log_seq = 0
    lag = 0.0
    for second in range(seconds + 1):
        now[0] = float(second)
        if second == 5:
            desired.serve("filter-rules", 2)
            sessions["filter/filter-2"].nacked["filter-rules"] = (
                2, "d2", "sensitive_words: 3 words exceed this instance's limit of 2")
            sessions["filter/filter-1"].running["filter-rules"] = (2, "d2")
        if second == 14:
            agg.detached(sessions["router/router-1"])
            del hub.sessions[("router", "router-1")]
        if second == 20:
            desired.serve("filter-rules", 3)
            for key in ("filter/filter-1", "filter/filter-2"):
                sessions[key].running["filter-rules"] = (3, "d3")
        if second >= 8 and second < 18:
            lag += 35.0
        for key, session in sessions.items():
            if key == "router/router-1" and second >= 14:
                continue
            rate = 40 + 5 * (len(key) % 4)
            count = int(rate * second)
            summary = {"c": {"in": float(count), "err": 0.0}, "g": {"conn": 12 if key.startswith("gateway") else 0},
                       "lag": {"0": lag, "1": 3.0} if key == "store/store-1" else {},
                       "h": {"delivered": _hist(count)} if key == "router/router-1" else {}}
            agg.summary(session, summary)
        agg.tick()
        if second == 0:
            update = agg.snapshot()
            sent, log_seq = dict(agg.rows), agg._log_seq
        else:
            update, sent, log_seq = agg.changes_since(sent, log_seq)
        recorder.write(START + second, update)
    recorder.close()
    return path
