"""One worker process: drives its share of the devices through the run's phases.

Phases, each started by the parent over the pipe so that all workers move together:
connect (online users, each device syncs) → "ready"; "start" → send at this worker's
share of the rate, with churn, then wait for every send's `stored` → "sent_done";
"final" → connect the offline users, wait until deliveries go quiet, final sync every
device (unless live-only) → "result" with everything the verifier needs.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass

from services.common.auth import issue_token

from .channel import PipeChannel
from .client import RunContext, SimulatedDevice
from .params import LoadTestParams
from .plan import Plan
from .stats import WorkerStats

__all__ = ["WorkerSpec", "worker_main", "Worker"]

PROGRESS_INTERVAL_S = 0.5
HEARTBEAT_INTERVAL_S = 25.0
QUIET_S = 1.0


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    index: int
    run_id: str
    params: dict
    secret: bytes


def worker_main(spec: WorkerSpec, conn) -> None:  # the spawn target: keep it importable and small
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and tells us
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        runner = asyncio.run
    runner(_main(spec, conn))


async def _main(spec: WorkerSpec, conn) -> None:
    channel = PipeChannel(conn)
    try:
        await Worker(spec, channel).run()
    except Exception as exc:  # report, don't vanish: the parent counts a failed worker
        channel.send(("failed", f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        channel.close()


class Worker:
    def __init__(self, spec: WorkerSpec, channel: PipeChannel) -> None:
        self.spec = spec
        self.channel = channel
        self.params = LoadTestParams.model_validate(spec.params)
        self.plan = Plan.build(self.params, run_id=spec.run_id)
        self.rng = random.Random(f"{spec.run_id}:{self.params.seed}:{spec.index}")
        self.stats = WorkerStats()
        self.ctx = RunContext(
            gateway=self.params.gateway, stats=self.stats, connect_timeout=self.params.connect_timeout,
            connect_gate=asyncio.Semaphore(max(1, self.params.connect_concurrency // self.params.workers)),
            gap_sync=self.params.final_sync, body_padding="." * self.params.body_bytes,
            compact=self.params.compact,
        )
        self.devices: dict[str, list[SimulatedDevice]] = {}
        for user_id in self.plan.users_of_worker(spec.index):
            token = issue_token(spec.secret, user_id, ttl_s=int(self.params.hard_timeout) + 3600)
            self.devices[user_id] = [
                SimulatedDevice(self.ctx, user_id=user_id, device_id=d, token=token, id_prefix=f"{spec.run_id}-{spec.index}-")
                for d in self.plan.devices
            ]
        self.online = [u for u in self.devices if u not in self.plan.offline]
        self.offline = [u for u in self.devices if u in self.plan.offline]
        total_online = max(1, self.params.online_users)
        self.share = len(self.online) / total_online
        self.send_started = self.send_ended = 0.0

    def all_devices(self, users=None) -> list[SimulatedDevice]:
        return [d for u in (self.devices if users is None else users) for d in self.devices[u]]

    async def run(self) -> None:
        deadline = time.monotonic() + self.params.hard_timeout
        await self._connect(self.online, timeout=self.params.connect_timeout * 2 + len(self.online) / 100)
        self.channel.send(("ready", self._snapshot()))
        command, arg = await self.channel.recv()
        if command != "start":
            return await self._finish(aborted=True)
        background = [asyncio.create_task(self._progress()), asyncio.create_task(self._heartbeats())]
        try:
            await self._send_phase(start_wall=arg)
            await self._await_stored(deadline=min(deadline, time.monotonic() + self.params.drain_timeout))
            self.channel.send(("sent_done", self._snapshot()))
            command, _ = await self.channel.recv()
            if command != "final":
                return await self._finish(aborted=True)
            drain_deadline = min(deadline, time.monotonic() + self.params.drain_timeout)
            await self._connect(self.offline, timeout=max(0.1, drain_deadline - time.monotonic()))
            await self._await_back(drain_deadline)
            await self._wait_quiet(drain_deadline)
            if self.params.final_sync:
                await self._final_sync(drain_deadline)
        finally:
            for task in background:
                task.cancel()
        await self._finish(aborted=False)

    # -- phases --------------------------------------------------------------------------

    async def _connect(self, users: list[str], *, timeout: float) -> None:
        devices = self.all_devices(users)
        for device in devices:
            device.start()
        try:
            async with asyncio.timeout(timeout):
                for device in devices:
                    await device.connected.wait()
                    await device.sync_idle.wait()
        except TimeoutError:
            pass  # counted: connect_failures, and whatever they then miss

    async def _send_phase(self, *, start_wall: float) -> None:
        params = self.params
        await asyncio.sleep(max(0.0, start_wall - time.time()))
        rate = params.rate * self.share
        churn_task = asyncio.create_task(self._churn(rate_per_s=params.churn / 60 * self.share))
        start = time.monotonic()
        self.send_started = time.time()
        issued = 0
        try:
            while True:
                elapsed = time.monotonic() - start
                if elapsed >= params.duration:
                    break
                due = int(_scheduled(elapsed, rate=rate, ramp=params.ramp)) - issued
                for _ in range(due):
                    issued += 1
                    self._send_one()
                await asyncio.sleep(0.005)
            due = int(_scheduled(params.duration, rate=rate, ramp=params.ramp)) - issued
            for _ in range(max(0, due)):
                self._send_one()
        finally:
            self.send_ended = time.time()
            churn_task.cancel()

    def _send_one(self) -> None:
        for _ in range(4):
            user_id = self.rng.choice(self.online)
            devices = [d for d in self.devices[user_id] if d.connected.is_set()]
            if devices:
                conversation_id = self.plan.pick_conversation(user_id, self.rng, group_fraction=self.params.group_fraction)
                if self.rng.choice(devices).send_message(conversation_id):
                    return
        self.stats.counters["send_skipped"] += 1

    async def _churn(self, *, rate_per_s: float) -> None:
        if rate_per_s <= 0:
            return
        devices = self.all_devices(self.online)
        while True:
            await asyncio.sleep(self.rng.expovariate(rate_per_s))
            connected = [d for d in devices if d.connected.is_set()]
            if connected and self.rng.choice(connected).bounce(self.rng.uniform(0.2, 1.5)):
                self.stats.counters["churn_events"] += 1

    async def _await_stored(self, *, deadline: float) -> None:
        """Until every send has its `stored` ack (resends after reconnects included)."""
        devices = self.all_devices(self.online)
        none_connected_since = None
        while time.monotonic() < deadline and any(d.pending for d in devices):
            if any(d.connected.is_set() for d in devices):
                none_connected_since = None
            elif none_connected_since is None:
                none_connected_since = time.monotonic()
            elif time.monotonic() - none_connected_since > 3.0:
                break  # the gateway is gone: waiting longer changes nothing
            await asyncio.sleep(0.05)

    async def _await_back(self, deadline: float) -> None:
        """Until every device is connected again and its connect sync answered. Churn may
        have taken a device down just before the send phase ended, for up to its downtime
        plus a reconnect: what it missed reaches it only by that sync, and a device the
        run ends without is counted as missing everything since (a loss the server never
        made)."""
        devices = self.all_devices()
        while time.monotonic() < deadline and not all(d.up and d.sync_idle.is_set() for d in devices):
            await asyncio.sleep(0.05)

    async def _wait_quiet(self, deadline: float) -> None:
        """Until no message has arrived for QUIET_S and no device waits on a sync."""
        self.ctx.last_frame_at = max(self.ctx.last_frame_at, time.monotonic())
        devices = self.all_devices()
        while time.monotonic() < deadline:
            syncing = any(not d.sync_idle.is_set() for d in devices)
            if not syncing and time.monotonic() - self.ctx.last_frame_at >= QUIET_S:
                return
            await asyncio.sleep(0.1)

    async def _final_sync(self, deadline: float) -> None:
        try:
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                await asyncio.gather(*(d.final_sync() for d in self.all_devices()))
        except TimeoutError:
            pass

    async def _finish(self, *, aborted: bool) -> None:
        self.ctx.stopping = True
        self.connected_at_end = sum(d.connected.is_set() for d in self.all_devices())
        await asyncio.gather(*(d.stop() for d in self.all_devices()), return_exceptions=True)
        self.channel.send(("result", self._result(aborted=aborted)))

    # -- reporting -----------------------------------------------------------------------

    async def _progress(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            self.channel.send(("progress", self._snapshot()))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)
            for device in self.all_devices():
                device.heartbeat()

    def _snapshot(self) -> dict:
        devices = self.all_devices()
        return {
            "index": self.spec.index,
            "counters": dict(self.stats.counters),
            "errors": sum(self.stats.error_frames.values()),
            "connected": sum(d.connected.is_set() for d in devices),
            "devices": len(devices),
            "pending": sum(len(d.pending) for d in devices),
            "arrival": self.stats.latencies["send_arrival"].to_dict(),
        }

    def _result(self, *, aborted: bool) -> dict:
        devices = self.all_devices()
        ledgers = [d.ledger for d in devices]
        return {
            "index": self.spec.index,
            "aborted": aborted,
            "stats": self.stats.to_dict(),
            "stored": self.ctx.stored,
            "seq_of": self.ctx.seq_of,
            "seq_conflicts": self.ctx.seq_conflicts,
            "receipts": {d.key: d.ledger.receipts() for d in devices},
            "duplicates": sum(x.duplicates for x in ledgers),
            "duplicate_kinds": dict(sum((Counter(x.dup_kinds) for x in ledgers), Counter())),
            "out_of_order": sum(x.out_of_order for x in ledgers),
            "crossed": sum(x.crossed for x in ledgers),
            "recovered": sum(x.recovered for x in ledgers),
            "received_live": sum(x.live for x in ledgers),
            "received_sync": sum(x.via_sync for x in ledgers),
            "unconfirmed": sum(len(d.pending) for d in devices),
            "connected_at_end": self.connected_at_end,
            "never_connected": sum(not d.ever_connected for d in devices),
            "send_started": self.send_started,
            "send_ended": self.send_ended,
        }


def _scheduled(elapsed: float, *, rate: float, ramp: float) -> float:
    """Messages due by `elapsed` seconds: the rate ramps linearly from 0 to `rate` over `ramp`."""
    if ramp <= 0:
        return rate * elapsed
    if elapsed < ramp:
        return rate * elapsed * elapsed / (2 * ramp)
    return rate * (elapsed - ramp / 2)
