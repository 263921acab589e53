"""The parent side of a load test: preflight, groups, worker processes, the verdict.

`run_loadtest(params)` is the whole run as one coroutine; the CLI and bench/e2e_bench.py
both call it. Workers are spawned processes (one event loop each, uvloop where it exists)
that talk to the parent over a Pipe; the parent moves them through the phases together,
collects what each one stored and received, and merges that into one verdict.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from services.common.auth import issue_token

from ..exitcodes import ExitCode
from .channel import EOF, PipeChannel
from .client import ConnectFailed, device_url, open_device
from .histogram import LatencyHistogram
from .params import LoadTestParams
from .plan import Plan
from .report import build_report
from .stats import WorkerStats
from .verifier import verify
from .worker import WorkerSpec, worker_main

__all__ = ["LoadTestError", "run_loadtest", "Progress"]


class LoadTestError(Exception):
    """The run could not happen; `exit_code` says why (unreachable, refused token …)."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.FAILURE, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.hint = hint


@dataclass(slots=True)
class Progress:
    """What the live display shows; rates are over the last interval."""

    phase: str
    elapsed_s: float
    sent: int
    stored: int
    delivered: int
    sent_per_s: float
    delivered_per_s: float
    p99_ms: float | None
    errors: int
    connected: int
    devices: int


# -- preflight and setup ---------------------------------------------------------------


async def preflight(params: LoadTestParams, plan: Plan, secret: bytes) -> None:
    token = issue_token(secret, plan.users[0], ttl_s=600)
    try:
        ws, _hello, _ = await open_device(device_url(params.gateway, token=token, device_id="d0"), timeout=params.connect_timeout)
    except ConnectFailed as exc:
        if exc.auth:
            raise LoadTestError(
                f"the gateway refused the load test's token: {exc}", ExitCode.UNAUTHORIZED,
                hint="pass the server's secret: --token-secret-file (flarectl up keeps it in ./.flare/token.secret)",
            ) from None
        raise LoadTestError(f"cannot reach the gateway at {params.gateway}: {exc}", ExitCode.UNAVAILABLE) from None
    await ws.close()


async def create_groups(params: LoadTestParams, plan: Plan, secret: bytes) -> None:
    """One `group_create` per group, sent by its creator's first device before the run."""
    by_creator: dict[str, list[str]] = defaultdict(list)
    for group_id, members in plan.groups.items():
        by_creator[members[0]].append(group_id)
    gate = asyncio.Semaphore(16)

    async def create(creator: str, group_ids: list[str]) -> None:
        async with gate:
            token = issue_token(secret, creator, ttl_s=600)
            try:
                ws, _, _ = await open_device(device_url(params.gateway, token=token, device_id=plan.devices[0]),
                                          timeout=params.connect_timeout)
            except ConnectFailed as exc:
                raise LoadTestError(f"group setup: cannot connect {creator}: {exc}", ExitCode.UNAVAILABLE) from None
            try:
                for group_id in group_ids:
                    await ws.send(orjson.dumps({"type": "group_create", "id": group_id, "group_id": group_id,
                                                "members": plan.groups[group_id][1:]}).decode())
                waiting = set(group_ids)
                async with asyncio.timeout(params.connect_timeout + 5):
                    while waiting:
                        frame = orjson.loads(await ws.recv())
                        if frame.get("type") == "group_created":
                            waiting.discard(frame.get("ref") or str(frame.get("conversation_id", "")).removeprefix("group:"))
                        elif frame.get("type") == "error" and frame.get("ref") in waiting:
                            raise LoadTestError(f"group_create {frame['ref']} failed: {frame.get('code')}: {frame.get('message')}")
            except TimeoutError:
                raise LoadTestError(f"group setup: no group_created for {sorted(waiting)[:3]}") from None
            finally:
                await ws.close()

    await asyncio.gather(*(create(c, g) for c, g in by_creator.items()))


# -- CPU -------------------------------------------------------------------------------


def _own_cpu_s() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _proc_cpu_s(pid: int | None, *, descendants: bool = True) -> float | None:
    """CPU seconds of a process and (unless told not to) its live descendants (a monolith's
    gateway workers)."""
    if pid is None:
        return None
    stats = _proc_stats()
    if pid not in stats:
        return None
    if not descendants:
        return stats[pid][1]
    children: dict[int, list[int]] = {}
    for child, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += stats[current][1]
        todo.extend(children.get(current, ()))
    return total


def _proc_stats() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds) for every process /proc shows."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return out


@dataclass
class _CpuWindow:
    """CPU of the tester (parent + workers, from /proc) and the server while sending."""

    started: float | None = None
    tester: float | None = None
    server: float | None = None
    wall_s: float | None = None
    tester_s: float | None = None
    server_s: float | None = None

    @staticmethod
    def _tester(processes: list) -> float | None:
        # This process alone: the server may be its child too (bench/e2e_bench.py starts
        # one), and the workers are counted next, each once.
        parts = [_proc_cpu_s(os.getpid(), descendants=False), *(_proc_cpu_s(p.pid) for p in processes)]
        return None if any(v is None for v in parts) else sum(parts)

    def start(self, processes: list, server_pid: int | None) -> None:
        self.started, self.tester, self.server = time.monotonic(), self._tester(processes), _proc_cpu_s(server_pid)

    def stop(self, processes: list, server_pid: int | None) -> None:
        if self.started is None:
            return
        self.wall_s = time.monotonic() - self.started
        tester, server = self._tester(processes), _proc_cpu_s(server_pid)
        self.tester_s = None if tester is None or self.tester is None else tester - self.tester
        self.server_s = None if server is None or self.server is None else server - self.server

    def summary(self) -> dict:
        def pct(v: float | None) -> float | None:
            return None if v is None or not self.wall_s else round(100 * v / self.wall_s, 1)

        return {"sending_tester_pct": pct(self.tester_s), "sending_server_pct": pct(self.server_s)}


# -- the workers ---------------------------------------------------------------------------


@dataclass
class _Workers:
    channels: list[PipeChannel]
    processes: list
    phase: dict[int, str] = field(default_factory=dict)
    snapshots: dict[int, dict] = field(default_factory=dict)
    results: dict[int, dict] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def pump(self, index: int) -> None:
        channel = self.channels[index]
        while True:
            kind, payload = await channel.recv()
            if (kind, payload) == EOF:
                if index not in self.results:
                    process = self.processes[index]
                    process.join(timeout=2)
                    self.failures.setdefault(index, f"worker process exited early (exit code {process.exitcode})")
                self.changed.set()
                return
            if kind == "failed":
                self.failures[index] = str(payload)
            elif kind == "result":
                self.results[index] = payload
            else:
                if kind in ("ready", "sent_done"):
                    self.phase[index] = kind
                self.snapshots[index] = payload
            self.changed.set()

    async def wait_all(self, phase: str) -> None:
        def done(i: int) -> bool:
            if i in self.failures or i in self.results:
                return True
            return phase != "result" and self.phase.get(i) == phase or (phase == "ready" and self.phase.get(i) == "sent_done")

        while not all(done(i) for i in range(len(self.channels))):
            self.changed.clear()
            await self.changed.wait()

    def broadcast(self, message: tuple) -> None:
        for index, channel in enumerate(self.channels):
            if index not in self.failures:
                channel.send(message)


async def _watch(workers: _Workers, params: LoadTestParams, on_progress: Callable[[Progress], None], started: float,
                 phase: list[str]) -> None:
    last_t, last_sent, last_delivered = time.monotonic(), 0, 0
    while True:
        await asyncio.sleep(0.5)
        now = time.monotonic()
        counters: dict[str, int] = defaultdict(int)
        arrival = LatencyHistogram()
        errors = connected = devices = 0
        for snap in workers.snapshots.values():
            for name, value in snap["counters"].items():
                counters[name] += value
            arrival.merge(LatencyHistogram.from_dict(snap["arrival"]))
            errors += snap["errors"] + snap["counters"].get("connect_failures", 0) + snap["counters"].get("disconnects", 0)
            connected += snap["connected"]
            devices += snap["devices"]
        sent, delivered = counters["sent"], counters["live_messages"]
        span = max(1e-6, now - last_t)
        p99 = arrival.percentile(99)
        on_progress(Progress(
            phase=phase[0], elapsed_s=now - started, sent=sent, stored=counters["acked_stored"], delivered=delivered,
            sent_per_s=(sent - last_sent) / span, delivered_per_s=(delivered - last_delivered) / span,
            p99_ms=None if p99 is None else p99 / 1000, errors=errors, connected=connected, devices=devices,
        ))
        last_t, last_sent, last_delivered = now, sent, delivered


async def run_loadtest(params: LoadTestParams, *, on_progress: Callable[[Progress], None] | None = None,
                       run_id: str | None = None) -> dict:
    """Run the whole test; returns the report (a plain dict, see report.build_report)."""
    secret = params.secret_bytes()
    run_id = run_id or secrets.token_hex(3)
    plan = Plan.build(params, run_id=run_id)
    await preflight(params, plan, secret)
    await create_groups(params, plan, secret)

    cpu_before, server_before = _own_cpu_s(), _proc_cpu_s(params.server_pid)
    started = time.monotonic()
    context = multiprocessing.get_context("spawn")
    channels, processes = [], []
    spec_params = params.model_dump(mode="json", exclude={"max_p99"})  # ms on input: keep it out of the round trip
    for index in range(params.workers):
        parent_end, child_end = context.Pipe()
        process = context.Process(target=worker_main, args=(WorkerSpec(index, run_id, spec_params, secret), child_end),
                                  name=f"flarectl-loadtest-{index}", daemon=True)
        process.start()
        child_end.close()
        channels.append(PipeChannel(parent_end))
        processes.append(process)
    workers = _Workers(channels, processes)
    pumps = [asyncio.create_task(workers.pump(i)) for i in range(params.workers)]
    phase = ["connecting"]
    watcher = asyncio.create_task(_watch(workers, params, on_progress, started, phase)) if on_progress else None
    timed_out = False
    window = _CpuWindow()
    try:
        async with asyncio.timeout(params.hard_timeout):
            await workers.wait_all("ready")
            phase[0] = "sending"
            workers.broadcast(("start", time.time() + 0.2))
            window.start(processes, params.server_pid)
            await workers.wait_all("sent_done")
            window.stop(processes, params.server_pid)
            phase[0] = "draining"
            workers.broadcast(("final", None))
            await workers.wait_all("result")
    except TimeoutError:
        timed_out = True
    finally:
        if watcher is not None:
            watcher.cancel()
        for task in pumps:
            task.cancel()
        for channel in channels:
            channel.close()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
    wall_s = time.monotonic() - started
    cpu_s = _own_cpu_s() - cpu_before
    server_after = _proc_cpu_s(params.server_pid)
    server_s = None if server_before is None or server_after is None else server_after - server_before
    for index in range(params.workers):
        if index not in workers.results:
            workers.failures.setdefault(index, "timed out" if timed_out else "no result")
    report = _merge(params, plan, workers, timed_out=timed_out, wall_s=wall_s, cpu_s=cpu_s, server_cpu_s=server_s)
    report["cpu"].update(window.summary())
    return report


def _merge(params: LoadTestParams, plan: Plan, workers: _Workers, *, timed_out: bool, wall_s: float, cpu_s: float,
           server_cpu_s: float | None) -> dict:
    stats = WorkerStats()
    stored: dict[int, str] = {}
    seq_of: dict[int, tuple[str, int]] = {}
    receipts = {}
    totals: dict[str, int] = defaultdict(int)
    seq_conflicts = 0
    duplicate_kinds: dict[str, int] = defaultdict(int)
    send_started, send_ended = [], []
    for result in workers.results.values():
        stats.merge(WorkerStats.from_dict(result["stats"]))
        stored.update(result["stored"])
        for msg_id, located in result["seq_of"].items():
            known = seq_of.setdefault(msg_id, located)
            if known != located:
                seq_conflicts += 1
        seq_conflicts += result["seq_conflicts"]
        receipts.update(result["receipts"])
        for kind, n in result["duplicate_kinds"].items():
            duplicate_kinds[kind] += n
        for name in ("duplicates", "out_of_order", "crossed", "recovered", "received_live", "received_sync", "unconfirmed",
                     "connected_at_end", "never_connected"):
            totals[name] += result[name]
        if result["send_started"]:
            send_started.append(result["send_started"])
            send_ended.append(result["send_ended"])
    recipients_cache: dict[str, list[str]] = {}

    def recipients_of(conversation_id: str) -> list[str]:
        if conversation_id not in recipients_cache:
            recipients_cache[conversation_id] = plan.recipient_devices(conversation_id)
        return recipients_cache[conversation_id]

    verdict = verify(stored=stored, seq_of=seq_of, devices=receipts, recipients_of=recipients_of, seq_conflicts=seq_conflicts)
    send_s = (max(send_ended) - min(send_started)) if send_started else 0.0
    return build_report(
        params, run_id=plan.run_id, stats=stats, verdict=verdict, totals=dict(totals), send_s=send_s, wall_s=wall_s,
        cpu_s=cpu_s, server_cpu_s=server_cpu_s, worker_failures=dict(workers.failures), timed_out=timed_out,
        duplicate_kinds=dict(duplicate_kinds),
    )
