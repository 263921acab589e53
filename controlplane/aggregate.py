"""The live picture of a deployment: every instance's health, rates, latencies, lag and config
sync, and the alerts that follow from them (ARCHITECTURE §7a).

Instances push a summary every second on the stream they already hold to the daemon
(`Summary` on `Subscribe`), rather than the daemon scraping each `/metrics`: the stream is
open anyway, so liveness needs no second channel (a killed instance is DOWN the moment its
stream drops, not after a scrape timeout); one small JSON message beats an HTTP connection
plus Prometheus text parsing per instance per second (the 1,000-instance bench); and in the
monolith, where every service shares one process and one `/metrics`, only the instance knows
which numbers are its own.

    agg = Aggregator(hub, desired)        # the daemon builds one and ticks it every second
    agg.snapshot()                        # {"type": "snapshot", "instances": [...], "alerts": [...]}
    async for update in agg.updates():    # the snapshot, then {"type": "changes", ...}
        ...

A row is keyed `service/instance_id`. Alerts are level-triggered: each tick evaluates every
row; an alert fires when its condition holds and clears when it stops, both kept in a
bounded log for the alerts screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from services.common.documents import StoredDocument, effective_document
from services.common.errors import FlareError

from .window import SPARK_POINTS, InstanceWindow

__all__ = ["Aggregator", "AlertRules", "ALERT_KINDS", "apply_changes"]

log = logging.getLogger("flare.controlplane.aggregate")

ALERT_KINDS = ("DOWN", "NACKED", "STALE", "NO_SUMMARY", "LAG_GROWING", "ERROR_RATE", "SEQ_GAP")


@dataclass(frozen=True, slots=True)
class AlertRules:
    stale_config_after_s: float = 15.0  # a kind not SYNCED for this long (and not NACKED)
    summary_silence_s: float = 5.0  # connected, but no summary for this long: NO_SUMMARY
    lag_min_records: float = 50.0  # LAG_GROWING needs at least this much lag ...
    lag_points: int = 5  # ... rising at each of this many summaries
    # ... or any lag with nothing consumed for this long (lag is read every 5 s, and commits
    # follow each batch, so a healthy consumer's lag reads zero well within two reads)
    lag_stall_s: float = 10.0
    error_rate_per_s: float = 1.0  # ERROR_RATE: errors per second above this ...
    error_share: float = 0.05  # ... and above this share of messages in


@dataclass(slots=True)
class _Instance:
    service: str
    instance_id: str
    address: str = ""
    started_at: str = ""
    software_version: str = ""
    session: object | None = None  # the hub Session while its stream is open
    window: InstanceWindow = field(default_factory=InstanceWindow)
    last_summary: float = 0.0  # monotonic
    last_seen_wall: float = 0.0
    down_since_wall: float = 0.0
    stored_kinds: list[dict] = field(default_factory=list)  # from status records, for instances with no stream
    in_topology: bool = False
    stale_since: dict[str, float] = field(default_factory=dict)


def _kind_state(session, kind: str, desired: StoredDocument | None) -> dict:
    running = session.running.get(kind)
    nack = session.nacked.get(kind)
    applied = running[0] if running else 0
    if desired is None:
        return {"kind": kind, "state": "NOT SENT", "desired_version": 0, "applied_version": applied, "error": ""}
    want = (desired.version, desired.digest)
    if running == want:
        state, error = "SYNCED", ""
    elif nack is not None and nack[:2] == want:
        state, error = "NACKED", nack[2]
    else:
        state, error = "STALE", ""
    return {"kind": kind, "state": state, "desired_version": desired.version, "applied_version": applied,
            "error": error}


class Aggregator:
    def __init__(self, hub, desired, *, rules: AlertRules = AlertRules(), tick_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 max_alert_log: int = 500, max_instances: int = 20_000) -> None:
        self._hub = hub
        self._desired = desired
        self.rules = rules
        self.tick_s = tick_s
        self._clock = clock
        self._wall = wall
        self._max_instances = max_instances
        self.instances: dict[str, _Instance] = {}
        self.rows: dict[str, dict] = {}
        self.alerts: dict[str, dict] = {}
        self.alert_log: deque[dict] = deque(maxlen=max_alert_log)
        self._log_seq = 0
        self.seq = 0
        self._changed = asyncio.Condition()
        self._poke = asyncio.Event()
        self._dirty: set[str] = set()  # rows to redo before the next full tick
        self._row_alerts: dict[str, dict[str, dict]] = {}
        self._refresh_store: Callable[[], object] | None = None
        self.rejections: list[dict] = []  # refused direct writes, refreshed with the store view
        self.extra_alerts: dict[str, dict] = {}  # raised from outside (e.g. a consistency check): id -> alert
        self.cpu_s = 0.0  # process CPU spent in ticks and summaries (the bench reads it)

    # -- inputs (from the hub) ----------------------------------------------------------------

    def _entry(self, service: str, instance_id: str) -> _Instance | None:
        key = f"{service}/{instance_id}"
        entry = self.instances.get(key)
        if entry is None:
            if len(self.instances) >= self._max_instances:
                return None  # a bounded picture: past the limit new instances are not tracked
            entry = self.instances[key] = _Instance(service, instance_id)
        return entry

    def attached(self, session) -> None:
        hello = session.hello
        entry = self._entry(hello.service, hello.instance_id)
        if entry is None:
            return
        entry.session = session
        entry.address, entry.started_at = hello.address, hello.started_at
        entry.software_version = hello.software_version
        entry.last_summary = self._clock()
        entry.last_seen_wall = self._wall()
        entry.down_since_wall = 0.0
        self._dirty.add(f"{hello.service}/{hello.instance_id}")
        self._poke.set()

    def detached(self, session) -> None:
        entry = self.instances.get(f"{session.hello.service}/{session.hello.instance_id}")
        if entry is not None and entry.session is session:
            entry.session = None
            entry.down_since_wall = self._wall()
            self._dirty.add(f"{session.hello.service}/{session.hello.instance_id}")
            self._poke.set()

    def reported(self, session) -> None:
        self._dirty.add(f"{session.hello.service}/{session.hello.instance_id}")
        self._poke.set()  # an ACK or NACK: show it now, not at the next tick

    def summary(self, session, summary: dict) -> None:
        started = time.process_time()
        entry = self.instances.get(f"{session.hello.service}/{session.hello.instance_id}")
        if entry is not None and isinstance(summary, dict):
            now = self._clock()
            entry.window.add(now, summary)
            entry.last_summary = now
            entry.last_seen_wall = self._wall()
        self.cpu_s += time.process_time() - started

    def merge_store(self, rows: list[dict]) -> None:
        """Instances the store knows (topology, status records) but that hold no stream here:
        split instances registered before this daemon started, and the dead."""
        seen = set()
        for row in rows:
            entry = self._entry(row["service"], row["instance_id"])
            if entry is None:
                continue
            seen.add(f"{row['service']}/{row['instance_id']}")
            entry.in_topology = row.get("health") == "UP"
            entry.address = entry.address or row.get("address", "")
            entry.started_at = entry.started_at or row.get("started_at", "")
            entry.software_version = entry.software_version or row.get("software_version", "")
            entry.stored_kinds = list(row.get("kinds", []))
        for key, entry in list(self.instances.items()):
            if key not in seen and entry.session is None:
                del self.instances[key]  # gone from the store too: its records were removed

    # -- derived state ------------------------------------------------------------------------

    def _row(self, key: str, entry: _Instance, now: float) -> dict:
        window = entry.window
        latest = window.latest
        if entry.session is not None:
            silent = now - entry.last_summary > self.rules.summary_silence_s and latest is not None
            health = "STALE" if silent else "UP"
            # a canary gives some instances their own version of a kind (as the hub pushes it)
            kinds = [_kind_state(entry.session, kind,
                                 effective_document(self._desired.served, kind, entry.instance_id))
                     for kind in entry.session.hello.kinds]
        else:
            health = "DOWN" if entry.down_since_wall or not entry.in_topology else "UP"
            kinds = entry.stored_kinds
        live = entry.session is not None
        stalled = window.stalled_s() if live else 0.0
        return {
            "id": key, "service": entry.service, "instance_id": entry.instance_id, "address": entry.address,
            "health": health, "started_at": entry.started_at, "software_version": entry.software_version,
            "last_seen": round(entry.last_seen_wall, 1), "streaming": live,
            "rates": window.rates() if live else {}, "latency_ms": window.latencies() if live else {},
            "connections": int(latest.gauges.get("conn", 0)) if latest and live else 0,
            "lag": {p: int(v) for p, v in sorted(latest.lag.items())} if latest and live else {},
            "lag_growing": live and window.lag_growing(min_lag=self.rules.lag_min_records,
                                                       points=self.rules.lag_points),
            "lag_stalled_s": round(stalled, 1) if stalled >= self.rules.lag_stall_s else 0.0,
            "kinds": kinds,
        }

    def _conditions(self, row: dict, entry: _Instance, now: float) -> list[tuple[str, str, str]]:
        """(alert kind, detail, reason) for every condition that holds for this row now."""
        found: list[tuple[str, str, str]] = []
        if row["health"] == "DOWN":
            found.append(("DOWN", "", "stream closed" if entry.down_since_wall else "not in the topology"))
        elif row["health"] == "STALE":
            found.append(("NO_SUMMARY", "", f"no summary for {now - entry.last_summary:.0f}s"))
        for kind in row["kinds"]:
            if kind["state"] == "NACKED":
                found.append(("NACKED", kind["kind"], f"v{kind['desired_version']}: {kind['error']}"))
                entry.stale_since.pop(kind["kind"], None)
            elif kind["state"] == "STALE" and row["health"] != "DOWN":
                since = entry.stale_since.setdefault(kind["kind"], now)
                if now - since >= self.rules.stale_config_after_s:
                    found.append(("STALE", kind["kind"], f"runs v{kind['applied_version']}, "
                                                         f"v{kind['desired_version']} unanswered for {now - since:.0f}s"))
            else:
                entry.stale_since.pop(kind["kind"], None)
        if row["lag_growing"] or row["lag_stalled_s"]:
            total = sum(row["lag"].values())
            worst = max(row["lag"].items(), key=lambda kv: kv[1])[0] if row["lag"] else "?"
            how = "rising" if row["lag_growing"] else f"nothing consumed for {row['lag_stalled_s']:.0f}s"
            found.append(("LAG_GROWING", "", f"consumer lag {total} records and {how} (worst partition {worst})"))
        rates = row["rates"]
        errors = rates.get("err", 0.0)
        if errors > self.rules.error_rate_per_s and errors > self.rules.error_share * max(rates.get("in", 0.0), 1.0):
            found.append(("ERROR_RATE", "", f"{errors:.1f} errors/s against {rates.get('in', 0.0):.1f} messages/s"))
        return found

    def _log(self, event: str, alert: dict) -> None:
        self._log_seq += 1
        self.alert_log.append({**alert, "event": event, "log_seq": self._log_seq, "at": round(self._wall(), 3)})

    def tick(self, only: set[str] | None = None) -> None:
        """Recompute every row and every alert (level-triggered); wake the watchers. With
        `only`, just those rows (an ACK, NACK, attach or detach between full ticks: with
        1,000 instances a full tick per ACK would cost the daemon more than the pushes)."""
        started = time.process_time()
        now, wall = self._clock(), self._wall()
        if only is None:
            for session in list(self._hub.sessions.values()):
                key = f"{session.hello.service}/{session.hello.instance_id}"
                if key not in self.instances or self.instances[key].session is not session:
                    self.attached(session)  # a stream that attached before the aggregator existed
            keys = sorted(self.instances)
            rows: dict[str, dict] = {}
            self._row_alerts = {}
            self._dirty.clear()
        else:
            keys = sorted(only)
            rows = dict(self.rows)
        for key in keys:
            entry = self.instances.get(key)
            if entry is None:
                rows.pop(key, None)
                self._row_alerts.pop(key, None)
                continue
            row = rows[key] = self._row(key, entry, now)
            found: dict[str, dict] = {}
            for alert_kind, detail, reason in self._conditions(row, entry, now):
                alert_id = f"{alert_kind}:{key}" + (f":{detail}" if detail else "")
                found[alert_id] = {"id": alert_id, "alert": alert_kind, "instance": key, "service": entry.service,
                                   "instance_id": entry.instance_id, "detail": detail, "reason": reason}
            self._row_alerts[key] = found
        firing: dict[str, dict] = {}
        for found in self._row_alerts.values():
            firing.update(found)
        firing.update(self.extra_alerts)
        for alert_id, alert in firing.items():
            previous = self.alerts.get(alert_id)
            alert["since"] = previous["since"] if previous else round(wall, 3)
            if previous is None:
                self._log("fired", alert)
        for alert_id, alert in self.alerts.items():
            if alert_id not in firing:
                self._log("cleared", alert)
        self.alerts = firing
        self.rows = rows
        self.seq += 1
        self.cpu_s += time.process_time() - started

    def snapshot(self) -> dict:
        return {"type": "snapshot", "seq": self.seq, "at": round(self._wall(), 3),
                "instances": [self._with_spark(row) for row in self.rows.values()],
                "alerts": list(self.alerts.values()), "alert_log": list(self.alert_log),
                "rejections": list(self.rejections),
                "documents": {kind: doc.version for kind, doc in self._desired.served.items()}}

    def _with_spark(self, row: dict) -> dict:
        entry = self.instances.get(row["id"])
        if entry is None:
            return row
        return {**row, "spark": {"in": list(entry.window.spark_in), "p99": list(entry.window.spark_p99)}}

    # -- the loop and the watchers ------------------------------------------------------------

    async def run(self, *, refresh_store: Callable[[], object] | None = None, store_every_s: float = 5.0) -> None:
        """Tick every `tick_s` (sooner after an attach, detach, ACK or NACK); every
        `store_every_s` also merge what the store knows (`refresh_store()` -> rows)."""
        self._refresh_store = refresh_store
        last_store = -store_every_s
        next_full = self._clock()
        while True:
            if refresh_store is not None and self._clock() - last_store >= store_every_s:
                last_store = self._clock()
                try:
                    self.merge_store(await refresh_store())  # type: ignore[misc]
                except FlareError as exc:
                    log.warning("store view not refreshed: %s", exc)
            if self._clock() >= next_full:
                self.tick()
                next_full = self._clock() + self.tick_s
            elif self._dirty:
                dirty, self._dirty = self._dirty, set()
                self.tick(only=dirty)
            async with self._changed:
                self._changed.notify_all()
            self._poke.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._poke.wait(), max(0.0, next_full - self._clock()))
            await asyncio.sleep(0.05)  # a burst of ACKs becomes one tick

    def changes_since(self, sent: dict[str, dict], log_seq: int) -> tuple[dict, dict[str, dict], int]:
        """What changed since a watcher was sent `sent` rows and the log up to `log_seq`:
        the update, and what the watcher then holds."""
        rows = self.rows
        changed = [self._with_spark(row) if row["id"] not in sent else row
                   for key, row in rows.items() if sent.get(key) is not row and sent.get(key) != row]
        removed = [key for key in sent if key not in rows]
        new_log = [entry for entry in self.alert_log if entry["log_seq"] > log_seq]
        update = {"type": "changes", "seq": self.seq, "at": round(self._wall(), 3), "instances": changed,
                  "removed": removed, "alerts": list(self.alerts.values()), "alert_log": new_log,
                  "rejections": list(self.rejections),
                  "documents": {kind: doc.version for kind, doc in self._desired.served.items()}}
        return update, dict(rows), self._log_seq

    async def fresh_snapshot(self) -> dict:
        """A snapshot with the store's view read just now (a one-shot `flarectl status`
        must show a rejection cleared a moment ago, not five seconds later)."""
        if self._refresh_store is not None:
            try:
                self.merge_store(await self._refresh_store())  # type: ignore[misc]
            except FlareError as exc:  # the store is away: the last view, and the streams, still tell a lot
                log.warning("store view not refreshed: %s", exc)
        self.tick()
        async with self._changed:
            self._changed.notify_all()
        return self.snapshot()

    def poke(self) -> None:
        self._poke.set()

    async def updates(self, *, interval_s: float = 0.0) -> AsyncIterator[dict]:
        """The snapshot, then at each tick (at most every `interval_s`) what changed:
        `{"type": "changes", "instances": [changed rows], "removed": [ids], "alerts": [all
        active], "alert_log": [entries since the last update]}`."""
        if self.seq == 0:  # the first tick (with the store's view) has not run yet
            async with self._changed:
                await self._changed.wait_for(lambda: self.seq != 0)
        yield self.snapshot()
        sent = dict(self.rows)
        log_seq = self._log_seq
        seq = self.seq
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: self.seq != seq)
            seq = self.seq
            update, sent, log_seq = self.changes_since(sent, log_seq)
            yield update
            if interval_s > 0:
                await asyncio.sleep(interval_s)


def apply_changes(state: dict | None, update: dict) -> dict:
    """The client side: fold one update into the picture so far (a snapshot replaces it).
    Used by `flarectl status --watch`, the TUI and `--replay`."""
    if update.get("type") == "snapshot" or state is None:
        rows = {row["id"]: row for row in update.get("instances", [])}
        return {"seq": update.get("seq", 0), "at": update.get("at", 0), "rows": rows,
                "alerts": list(update.get("alerts", [])), "alert_log": list(update.get("alert_log", []))[-500:],
                "rejections": list(update.get("rejections", [])), "documents": dict(update.get("documents", {}))}
    rows = dict(state["rows"])
    for row in update.get("instances", []):
        if "spark" not in row and row["id"] in rows and "spark" in rows[row["id"]]:
            row = {**row, "spark": rows[row["id"]]["spark"]}
        rows[row["id"]] = row
    for key in update.get("removed", []):
        rows.pop(key, None)
    for key, row in rows.items():  # every row's sparkline moves one point per update
        spark = row.get("spark") or {"in": [], "p99": []}
        latency = row.get("latency_ms", {})
        p99 = latency.get("delivered_p99", latency.get("stored_p99", 0.0))
        rows[key] = {**row, "spark": {"in": (spark["in"] + [row.get("rates", {}).get("in", 0.0)])[-SPARK_POINTS:],
                                      "p99": (spark["p99"] + [p99])[-SPARK_POINTS:]}}
    alert_log = (state["alert_log"] + list(update.get("alert_log", [])))[-500:]
    return {"seq": update.get("seq", 0), "at": update.get("at", 0), "rows": rows,
            "alerts": list(update.get("alerts", [])), "alert_log": alert_log,
            "rejections": list(update.get("rejections", state.get("rejections", []))),
            "documents": dict(update.get("documents", state.get("documents", {})))}
