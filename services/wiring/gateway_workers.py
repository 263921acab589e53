"""Gateway worker processes next to the monolith's core (ARCHITECTURE §3, "processes").

The core process keeps every service but the gateway; `workers` gateway processes
(services.wiring.gateway_worker) each accept WebSocket clients on the same port
(SO_REUSEPORT) and are joined to the core by one batched channel each (a socketpair;
services/common/channel.py). Across it, one way, the delivery seam: this module is the
GatewayDirectory the core's delivery and sync push through (one GatewayClient per worker,
gateway id `<gateway_id>-w<i>`); the other way, a worker's calls on the router, sync and
session services, which run here.

The port is held by a socket bound here with SO_REUSEPORT and never listened on, so a
port of 0 is resolved once and every worker binds the same one. A worker that exits
unexpectedly is started again (its clients reconnect and sync: nothing is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Sequence

import orjson

from services.backends.revocations import REVOKED_TOKENS, REVOKED_USERS, Revocations
from services.common.channel import Channel
from services.common.config import GatewayConfig
from services.common.errors import FlareError
from services.common.metrics import merged_exposition
from services.delivery.seam import Push
from services.router.client import RouterClient
from services.session.client import SessionClient
from services.sync.client import SyncClient

__all__ = ["GatewayWorkers", "WorkerGatewayClient", "SERVICE_METHODS", "default_worker_count"]

log = logging.getLogger("flare.gateway.workers")

# What a worker may call in the core: the methods of the Protocols its GatewayService is
# given (RouterClient, SyncClient, SessionClient), nothing else of those objects.
def _protocol_methods(protocol: type) -> frozenset[str]:
    return frozenset(name for name, value in vars(protocol).items()
                     if callable(value) and not name.startswith("_"))


SERVICE_METHODS = {
    # on_delivered_many: a tick's device acks in one notification (RouterService has it,
    # the gRPC client does not, so it is not in the Protocol).
    "router": _protocol_methods(RouterClient) | {"on_delivered_many"},
    "sync": _protocol_methods(SyncClient),
    "session": _protocol_methods(SessionClient),
}
_CORE_METHODS = frozenset({"worker_settings", "worker_ready", "worker_stats", "close_connection"})
_START_TIMEOUT_S = 30.0
_RESTART_DELAY_S = 0.5


def default_worker_count() -> int:
    """`flarectl up`'s default when neither --gateway-workers nor [gateway] workers says:
    one worker when this process may run on two or more cores, else none. On the 2-core VM
    one worker carried 1,300 msg/s at a send->deliver p99 of 29-52 ms where the single
    process gave 77-93 ms (bench/results/2026-12-02/README.md); a second worker added only
    channel work there. More cores: set the count."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return 1 if cores >= 2 else 0


class WorkerGatewayClient:
    """GatewayClient over the channel to one worker."""

    def __init__(self, gateway_id: str) -> None:
        self.gateway_id = gateway_id
        self.channel: Channel | None = None

    async def push(self, pushes: Sequence[Push]) -> list[str]:
        channel = self.channel
        if channel is None or channel.closed:
            return [p.connection_id for p in pushes]
        # As plain tuples: a NamedTuple pickles through Python-level __reduce__ and is
        # rebuilt through its Python __new__, 2.2 us a push both ways against 0.5 us as
        # a tuple (the worker only unpacks them), and a busy core pushes ~10,000 a second.
        return await channel.call("gateway", "push", ([tuple(p) for p in pushes],))

    async def close_connection(self, connection_id: str, *, code: int, reason: str) -> None:
        if self.channel is not None and not self.channel.closed:
            await self.channel.call("gateway", "close_connection", (connection_id,), {"code": code, "reason": reason})


class _Worker:
    def __init__(self, index: int, gateway_id: str, node_id: int) -> None:
        self.index = index
        self.gateway_id = gateway_id
        self.node_id = node_id
        self.client = WorkerGatewayClient(gateway_id)
        self.process: asyncio.subprocess.Process | None = None
        self.ready = asyncio.Event()
        self.connections = 0


class GatewayWorkers:
    """The GatewayDirectory of the monolith when its gateways run in worker processes."""

    def __init__(self, *, count: int, config: GatewayConfig, gateway_id: str, node_id: int, token_secret: bytes,
                 recall_window_s: int, sync_page_limit: int, log_level: str = "warning",
                 log_format: str = "auto") -> None:
        """`recall_window_s`, `sync_page_limit`: message-sync's settings the gateways advertise."""
        if count < 1:
            raise ValueError("GatewayWorkers needs at least one worker")
        self.config = config
        self._secret = token_secret
        self._advertised = {"recall_window_s": recall_window_s, "sync_page_limit": sync_page_limit}
        self._services: dict[str, object] = {}
        self._log_level = log_level
        self._log_format = log_format
        # Each worker mints message ids, so each has a node id of its own (the snowflake's
        # node bits): node_id, node_id + 1, ... for this one-node deployment.
        self._workers = [_Worker(i, f"{gateway_id}-w{i}", (node_id + i) % 1024) for i in range(count)]
        self._by_id = {w.gateway_id: w for w in self._workers}
        self._reservation: socket.socket | None = None
        self._revocations: Revocations | None = None
        self._watchers: list[asyncio.Task] = []
        self._stopping = False
        self.port = config.port

    @property
    def url(self) -> str:
        return f"ws://{self.config.host}:{self.port}/ws"

    @property
    def gateway_ids(self) -> list[str]:
        return [w.gateway_id for w in self._workers]

    @property
    def connection_count(self) -> int:
        return sum(w.connections for w in self._workers)

    async def metrics_exposition(self) -> bytes:
        """The core's /metrics with every worker's Flare counters added in."""
        return merged_exposition(await self.metric_snapshots())

    async def metric_snapshots(self) -> list[list]:
        """Every live worker's metrics (services.common.metrics.metric_snapshot), for /metrics."""
        async def one(worker: _Worker) -> list | None:
            channel = worker.client.channel
            if channel is None or channel.closed:
                return None
            try:
                return await asyncio.wait_for(channel.call("gateway", "metrics"), 4)
            except (asyncio.TimeoutError, FlareError):
                return None
        return [s for s in await asyncio.gather(*(one(w) for w in self._workers)) if s is not None]

    # -- GatewayDirectory ----------------------------------------------------------------
    def get(self, gateway_id: str) -> WorkerGatewayClient | None:
        worker = self._by_id.get(gateway_id)
        return worker.client if worker is not None else None

    # -- what a worker may call here ("core") --------------------------------------------
    def _core_target(self, worker: _Worker) -> object:
        workers = self

        class Core:
            def worker_settings(self) -> dict:
                # The outbound byte budget is the gateway's, shared: each of N workers gets
                # 1/N of it, so the process tree stays inside what the config promises.
                share = max(1 << 20, workers.config.outbound_total_bytes // len(workers._workers))
                return {"config": workers.config.model_copy(update={"port": workers.port,
                                                                    "outbound_total_bytes": share}),
                        "gateway_id": worker.gateway_id, "node_id": worker.node_id,
                        "token_secret": workers._secret, "log_level": workers._log_level,
                        "log_format": workers._log_format, "advertised": workers._advertised,
                        "revocations": workers._revocations.entries() if workers._revocations is not None else None}

            def worker_ready(self, gateway_id: str, port: int) -> None:
                worker.ready.set()

            def worker_stats(self, gateway_id: str, connections: int) -> None:
                worker.connections = connections

            async def close_connection(self, gateway_id: str, connection_id: str, *, code: int, reason: str) -> None:
                client = workers.get(gateway_id)
                if client is not None:
                    await client.close_connection(connection_id, code=code, reason=reason)

        return Core()

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, services: dict[str, object], *, revocations: Revocations | None = None) -> None:
        """`services`: the core's router, sync and session, which the workers call.
        `revocations`: the core's mirror; each worker gets a copy and every change after."""
        self._services = services
        self._revocations = revocations
        if revocations is not None:
            revocations.add_listener(lambda user, not_before: self._tell_workers(
                REVOKED_USERS + user, orjson.dumps({"not_before": not_before})))
            revocations.add_token_listener(lambda token_id: self._tell_workers(
                REVOKED_TOKENS + token_id, orjson.dumps({"expires_at": 0})))
        reservation = socket.socket(socket.AF_INET6 if ":" in self.config.host else socket.AF_INET)
        reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reservation.bind((self.config.host, self.config.port))
        self._reservation = reservation
        self.port = reservation.getsockname()[1]
        try:
            await asyncio.gather(*(self._spawn(w) for w in self._workers))
        except BaseException:
            await self.stop()
            raise
        self._watchers = [asyncio.create_task(self._watch(w), name=f"gateway-worker-{w.index}")
                          for w in self._workers]
        log.info("%d gateway workers on %s", len(self._workers), self.url)

    def _tell_workers(self, key: str, value: bytes) -> None:
        for worker in self._workers:
            channel = worker.client.channel
            if channel is not None and not channel.closed:
                channel.notify("gateway", "revocation", (key, value))

    async def _spawn(self, worker: _Worker) -> None:
        ours, theirs = socket.socketpair()
        try:
            worker.ready.clear()
            worker.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "services.wiring.gateway_worker", "--fd", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        channel = Channel(reader, writer, name=f"core<->{worker.gateway_id}")
        for name, methods in SERVICE_METHODS.items():
            channel.expose(name, self._services[name], methods)
        channel.expose("core", self._core_target(worker), _CORE_METHODS)
        channel.start()
        worker.client.channel = channel
        try:
            await asyncio.wait_for(worker.ready.wait(), _START_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise OSError(f"gateway worker {worker.gateway_id} did not start within {_START_TIMEOUT_S:.0f} s") from None

    async def _watch(self, worker: _Worker) -> None:
        while not self._stopping:
            assert worker.process is not None
            code = await worker.process.wait()
            if self._stopping:
                return
            log.error("gateway worker %s exited with %s; starting it again", worker.gateway_id, code)
            worker.connections = 0
            if worker.client.channel is not None:
                await worker.client.channel.close()
            await asyncio.sleep(_RESTART_DELAY_S)
            if self._stopping:
                return
            try:
                await self._spawn(worker)
            except OSError:
                log.exception("gateway worker %s could not be restarted", worker.gateway_id)

    async def stop(self) -> None:
        self._stopping = True
        for task in self._watchers:
            task.cancel()
        for worker in self._workers:
            channel = worker.client.channel
            if channel is not None and not channel.closed:
                channel.notify("gateway", "stop_worker")
        for worker in self._workers:
            process = worker.process
            if process is None or process.returncode is not None:
                continue
            try:
                await asyncio.wait_for(process.wait(), 10)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for worker in self._workers:
            if worker.client.channel is not None:
                await worker.client.channel.close()
        if self._reservation is not None:
            self._reservation.close()
            self._reservation = None
