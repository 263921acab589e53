"""The monolith: every service in one process, wired in-process (ARCHITECTURE §3).

The same service classes run split over gRPC; only this wiring differs. With no backend
URLs configured, everything is embedded under data_dir (`flarectl up`). With
`[gateway] workers = N` (`flarectl up --gateway-workers N`) the gateway runs instead in N
worker processes next to this core process (services/wiring/gateway_workers.py), so the
WebSocket work and the core's work use different cores; with 0, `gateway` is the one
in-process GatewayService that tests may reach into.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from controlplane.agent import ConfigAgent, appliers_for
from controlplane.api import serve_grpc
from controlplane.daemon import ControlPlane
from services.backends.cache import Cache
from services.backends.configstore import ConfigStore
from services.backends.log import Log
from services.archive import TieredHistory
from services.backends.messagedb import MessageDB
from services.backends.objectstore import ObjectStore
from services.backends.registry import open_cache, open_configstore, open_log, open_messagedb, open_objectstore
from services.common.config import FlareConfig
from services.common.health import health_status, problems_of
from services.common.ids import MessageIdGenerator
from services.common.metrics import AdminServer
from services.common.metrics_summary import summary_source
from services.common.runtime import HeapTrimmer
from services.delivery import Delivery, Membership
from services.filter import FilterService
from services.gateway import GatewayService, LocalGateways
from services.router import RouterService
from services.session import SessionService
from services.store import StoreService
from services.sync import SyncService
from services.wiring.gateway_workers import GatewayWorkers
from services.common.paths import ensure_admin_token, ensure_data_dir, load_or_create_secret

__all__ = ["Monolith"]

log = logging.getLogger("flare.monolith")


class Monolith:
    def __init__(self, config: FlareConfig) -> None:
        self.config = config
        self.data_dir = Path(config.data_dir).resolve()
        self.gateway_id = config.gateway.gateway_id or f"gw-{config.node_id}"
        self._started = False

    # Public handles (valid after start) ---------------------------------------------
    log: Log
    cache: Cache
    db: MessageDB
    objects: ObjectStore
    configstore: ConfigStore
    controlplane: ControlPlane
    controlplane_port: int
    agents: list[ConfigAgent]
    filter: FilterService
    session: SessionService
    store: StoreService
    delivery: Delivery
    router: RouterService
    sync: SyncService
    gateway: GatewayService | None  # None when the gateway runs in worker processes
    gateway_workers: GatewayWorkers | None
    admin: AdminServer
    token_secret: bytes

    @property
    def gateway_url(self) -> str:
        return self.gateway_workers.url if self.gateway_workers is not None else self.gateway.url

    @property
    def controlplane_address(self) -> str:
        return f"{self.config.controlplane.host}:{self.controlplane_port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self.admin.host}:{self.admin.port}"

    async def start(self) -> None:
        cfg = self.config
        ensure_data_dir(self.data_dir)
        self.token_secret = load_or_create_secret(self.data_dir, cfg.token_secret)
        self.log = open_log(cfg.backend_url("log"))
        self.cache = open_cache(cfg.backend_url("cache"))
        self.db = open_messagedb(cfg.backend_url("messagedb"))
        self.objects = open_objectstore(cfg.backend_url("objectstore"))
        self.configstore = open_configstore(cfg.backend_url("configstore"))
        for backend in (self.log, self.cache, self.db, self.objects):
            await backend.start()
        await self.db.migrate()

        # Each service object is its own in-process client (it satisfies its Protocol);
        # only the gateway is reached through an adapter, the delivery seam
        # (services/delivery/seam.py): in this process, or in gateway worker processes.
        self.filter = FilterService()
        self.session = SessionService(cache=self.cache, config=cfg.session)
        ids = MessageIdGenerator(cfg.node_id)
        gateways: LocalGateways | GatewayWorkers
        if cfg.gateway.workers:
            gateways = self.gateway_workers = GatewayWorkers(
                count=cfg.gateway.workers, config=cfg.gateway, gateway_id=self.gateway_id, node_id=cfg.node_id,
                token_secret=self.token_secret, recall_window_s=cfg.sync.recall_window_s,
                sync_page_limit=cfg.sync.page_limit,
                log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower())
        else:
            gateways = LocalGateways()
            self.gateway_workers = None
        membership = Membership(self.db)
        self.delivery = Delivery(session=self.session, gateways=gateways, db=self.db, log=self.log,
                                 config=cfg.router, membership=membership)
        self.store = StoreService(log=self.log, db=self.db, cache=self.cache, config=cfg.store,
                                  delivery=self.delivery)
        self.router = RouterService(filter=self.filter, store=self.store, delivery=self.delivery)
        self.sync = SyncService(db=self.db, cache=self.cache, fanout=self.delivery.fanout,
                                membership=membership, config=cfg.sync,
                                history=TieredHistory(self.db, self.objects))
        # The control plane runs in-process on the same ConfigStore (started below); the
        # gateway checks logins against its revocation list (one watch for both).
        self.controlplane = ControlPlane(self.configstore, self.token_secret, owns_store=True)
        if isinstance(gateways, LocalGateways):
            self.gateway = GatewayService(
                config=cfg.gateway, gateway_id=self.gateway_id, token_secret=self.token_secret,
                router=self.router, sync=self.sync, session=self.session, ids=ids,
                revocations=self.controlplane.revocations,
                recall_window_s=cfg.sync.recall_window_s, sync_page_limit=cfg.sync.page_limit,
            )
            gateways.add(self.gateway)
        else:
            self.gateway = None
        self.admin = AdminServer(cfg.admin.host, cfg.admin.port, health=self.health,
                                 metrics=self.gateway_workers.metrics_exposition if self.gateway_workers else None)

        # Services take their documents through agents exactly as split instances do, and
        # flarectl reaches the control plane over gRPC on the control-plane port.
        await self.controlplane.start()
        self.controlplane_port = await serve_grpc(self.controlplane, cfg.controlplane.host, cfg.controlplane.port)
        ensure_admin_token(self.data_dir, self.token_secret)
        consumers = [("filter", self.filter, ["filter-rules"]), ("router", self.router, ["routing"]),
                     ("session", self.session, ["routing"]), ("store", self.store, ["tiering"])]
        # Each service is its own instance with its own id (the gateway keeps its gateway id),
        # and each pushes the summary of the metrics its code moves (ARCHITECTURE §7a).
        self.agents = [
            ConfigAgent(name, f"{name}-{cfg.node_id}", "in-process", appliers_for(service, kinds),
                        self.data_dir / "agents" / name, self.controlplane, summary=summary_source(name))
            for name, service, kinds in consumers
        ]

        for agent in self.agents:
            await agent.start()

        await self.session.start()
        await self.router.start()
        await self.sync.start()
        await self.store.start()
        if self.gateway_workers is not None:
            await self.gateway_workers.start({"router": self.router, "sync": self.sync, "session": self.session},
                                             revocations=self.controlplane.revocations)
        else:
            await self.gateway.start()
        # The gateway consumes no document, but it is an instance on call wants to see
        # (with gateway workers: their summary is the core's view of them).
        gateway_agent = ConfigAgent("gateway", self.gateway_id, self.gateway_url, {},
                                    self.data_dir / "agents" / "gateway", self.controlplane,
                                    summary=summary_source("gateway"))
        await gateway_agent.start()
        self.agents.append(gateway_agent)
        await self.admin.start()
        self._heap = HeapTrimmer()
        self._heap.start()
        self._started = True
        log.info("flare monolith up: gateway %s, admin %s, data %s", self.gateway_url, self.admin_url, self.data_dir)

    def health(self) -> dict:
        problems = problems_of([self.log, self.db, self.cache, self.store, self.router]) if self._started else []
        return {
            "status": health_status(problems) if self._started else "starting",
            "problems": problems,
            "gateway_id": self.gateway_id,
            "connections": self._connection_count() if self._started else 0,
            "persisted": self.store.persisted if self._started else 0,
        }

    def _connection_count(self) -> int:
        if self.gateway_workers is not None:
            return self.gateway_workers.connection_count
        return self.gateway.connection_count

    async def stop(self) -> None:
        """Stop accepting, drain what is in flight, close the backends."""
        if not self._started:
            return
        self._started = False
        front = self.gateway_workers if self.gateway_workers is not None else self.gateway
        steps = [front.stop, self.admin.stop, self.store.stop, self.router.stop, self.sync.stop,
                 self.session.stop, self._heap.stop]
        steps += [agent.stop for agent in self.agents] + [self.controlplane.stop]
        for step in steps:
            with contextlib.suppress(Exception):
                await step()
        for backend in (self.objects, self.db, self.cache, self.log):
            with contextlib.suppress(Exception):
                await backend.close()

    async def __aenter__(self) -> Monolith:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def run_until_signalled(monolith: Monolith, stop: asyncio.Event) -> None:
    await monolith.start()
    try:
        await stop.wait()
    finally:
        await monolith.stop()
