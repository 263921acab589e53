"""Run one service instance as its own process: `python -m services.<name> --config FILE`.

Every `services/<name>/__main__.py` supplies a `build(ctx) -> Running` and calls `main`;
this module does the rest, the same for every service:

1. load the config and set up logging; run on uvloop,
2. open the backends the service asks `ctx` for (by URL, services.backends.registry),
3. serve its gRPC API, register it in the topology (`/flare/topology/<service>/<id>`, under
   the instance's own lease, through ConfigAgent) and take its documents from the
   control plane,
4. serve /metrics and /healthz on the admin port, print one `ready …` line on stdout,
5. on SIGTERM/SIGINT: leave the topology first (peers stop choosing it), then stop the
   service, its gRPC server and its backends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.agent import ConfigAgent
from services.backends.cache import Cache
from services.backends.configstore import ConfigStore
from services.backends.log import Log
from services.backends.messagedb import MessageDB
from services.backends.messagedb.migrator import Migrator
from services.backends.objectstore import ObjectStore
from services.backends.registry import open_cache, open_configstore, open_log, open_messagedb, open_objectstore
from services.common import paths
from services.common.auth import ROLE_SERVICE, issue_token
from services.common.config import FlareConfig, load_config
from services.common.errors import FlareError
from services.common.grpcio import GrpcServer, start_server
from services.common.health import health_status, problems_of
from services.common.logs import setup_logging
from services.common.metrics import AdminServer
from services.common.metrics_summary import summary_source
from services.common.runtime import HeapTrimmer, freeze_startup_heap, tune_interpreter
from services.common.stalls import StallWatchdog, watchdog_from_env
from services.wiring.discovery import TOPOLOGY_PREFIX, Topology

__all__ = ["ProcessContext", "Running", "main", "controlplane_token"]

log = logging.getLogger("flare.process")

Registration = Callable[[Any], None]
Step = Callable[[], Awaitable[Any]]


@dataclass
class Running:
    """What a service's `build` hands back to the runner."""

    registrations: list[Registration]
    start: Step | None = None
    stop: Step | None = None  # drain: called after the instance left the topology
    appliers: Mapping[str, Callable[[dict], Awaitable[None]]] = field(default_factory=dict)
    health: Callable[[], dict] | None = None
    announce: dict[str, str] = field(default_factory=dict)  # extra fields for the ready line


class ProcessContext:
    """The config, identity and lazily opened backends of one instance."""

    def __init__(self, config: FlareConfig, service: str, instance_id: str, args: argparse.Namespace) -> None:
        self.config = config
        self.service = service
        self.instance_id = instance_id
        self.args = args
        self.data_dir = Path(config.data_dir).resolve()
        self.configstore: ConfigStore = open_configstore(config.backend_url("configstore"))
        self.topology = Topology(self.configstore)
        self._backends: list[Any] = []
        self._closers: list[Step] = []

    async def _open(self, backend: Any) -> Any:
        await backend.start()
        self._backends.append(backend)
        return backend

    async def cache(self) -> Cache:
        return await self._open(open_cache(self.config.backend_url("cache")))

    async def log(self) -> Log:
        return await self._open(open_log(self.config.backend_url("log")))

    async def objects(self) -> ObjectStore:
        return await self._open(open_objectstore(self.config.backend_url("objectstore")))

    async def messagedb(self) -> MessageDB:
        db = await self._open(open_messagedb(self.config.backend_url("messagedb")))
        # Split services never migrate: one `flarectl migrate up` step does, before they start
        # (a deploy must not race N processes into DDL). Behind: refuse, naming that command.
        await Migrator(db).require_current()
        return db

    def token_secret(self) -> bytes:
        """The client-token secret every gateway shares (config, else data_dir/token.secret)."""
        secret = paths.read_secret(self.data_dir, self.config.token_secret)
        if secret is None:
            # Never make one up here: gateways with different secrets would each refuse
            # the other's clients. The launcher (or the operator) writes it first.
            raise FlareError(f"no token secret: set token_secret in the config or create "
                             f"{paths.token_secret_path(self.data_dir)}")
        return secret

    def close_at_exit(self, closer: Step) -> None:
        """Close a client (gRPC pool, directory) after the service stopped."""
        self._closers.append(closer)

    async def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                await closer()
        for backend in reversed(self._backends):
            with contextlib.suppress(Exception):
                await backend.close()


def controlplane_token(config: FlareConfig, subject: str) -> str | None:
    """The instance's own `service` token for its config stream: FLARE_SERVICE_TOKEN (one
    `flarectl auth token issue --role service` minted), else one minted from the token
    secret the instance already holds. Never admin.token: an instance needs no operator
    powers, and an operator token may not Subscribe."""
    token = os.environ.get("FLARE_SERVICE_TOKEN")
    if token:
        return token.strip()
    data_dir = Path(config.data_dir).resolve()
    secret = paths.read_secret(data_dir, config.token_secret)
    return issue_token(secret, subject, ttl_s=365 * 86400, role=ROLE_SERVICE) if secret else None


def _parser(service: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m services.{service}",
                                     description=f"Run one Flare {service} instance (split deployment).")
    parser.add_argument("--config", default=os.environ.get("FLARE_CONFIG"), help="Flare config file (TOML/YAML)")
    parser.add_argument("--instance-id", help=f"topology instance id [default: {service}-<pid>]")
    parser.add_argument("--host", help="bind address [default: split.host]")
    parser.add_argument("--port", type=int, help="the service's port (gRPC; WebSocket for the gateway) [0: any]")
    parser.add_argument("--grpc-port", type=int, default=0, help="gateway only: its push API's gRPC port [0: any]")
    parser.add_argument("--admin-port", type=int, default=0, help="/metrics and /healthz port [0: any]")
    parser.add_argument("--node-id", type=int, help="message-id node (gateway; unique per gateway)")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-format", default="auto", help="json | text | auto")
    return parser


def main(service: str, build: Callable[[ProcessContext], Awaitable[Running]], argv: list[str] | None = None) -> int:
    args = _parser(service).parse_args(argv)
    setup_logging(args.log_level, fmt=args.log_format)
    try:
        overrides = {"node_id": args.node_id} if args.node_id is not None else {}
        config = load_config(args.config, **overrides)
    except (OSError, ValueError) as exc:
        print(f"error: cannot load config: {exc}", file=sys.stderr)
        return 2
    instance_id = args.instance_id or f"{service}-{os.getpid()}"
    tune_interpreter()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(_serve(ProcessContext(config, service, instance_id, args), build))
    except FlareError as exc:
        print(f"error: {service} {instance_id}: {exc}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        return 130
    return 0


async def _serve(ctx: ProcessContext, build: Callable[[ProcessContext], Awaitable[Running]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    cfg, args = ctx.config, ctx.args
    host = args.host or cfg.split.host
    started: list[Step] = []
    server: GrpcServer | None = None
    agent: ConfigAgent | None = None
    admin: AdminServer | None = None
    heap = HeapTrimmer()
    stalls: StallWatchdog | None = None
    ready = False
    await ctx.configstore.start()
    try:
        running = await build(ctx)
        # After build: clients built there subscribed to topology changes before the first list.
        await ctx.topology.start()
        started.append(ctx.topology.stop)
        grpc_port = args.grpc_port if ctx.service == "gateway" else (args.port or 0)
        server = await start_server(*running.registrations, host=host, port=grpc_port)
        if running.start is not None:
            await running.start()
        if running.stop is not None:
            started.append(running.stop)
        cp_address = cfg.controlplane.address or f"{cfg.controlplane.host}:{cfg.controlplane.port}"
        agent = ConfigAgent(
            ctx.service, ctx.instance_id, server.address, dict(running.appliers),
            ctx.data_dir / "agents" / ctx.service / ctx.instance_id, cp_address,
            token=controlplane_token(cfg, f"{ctx.service}/{ctx.instance_id}"),
            registry=ctx.configstore, lease_ttl_s=cfg.split.lease_ttl_s,
            summary=summary_source(ctx.service),
        )
        await agent.start()
        admin = AdminServer(host, args.admin_port, health=lambda: _health(ctx, server, running, ready))
        await admin.start()
        heap.start()
        freeze_startup_heap()
        stalls = watchdog_from_env()  # opt-in: log where the loop was whenever it stalls
        ready = True
        fields = {"grpc": server.address, "admin": f"http://{host}:{admin.port}", **running.announce}
        print(f"ready {ctx.service} {ctx.instance_id} " + " ".join(f"{k}={v}" for k, v in fields.items()), flush=True)
        log.info("%s %s up: %s", ctx.service, ctx.instance_id, fields)
        await stop.wait()
    finally:
        ready = False
        if stalls is not None:
            stalls.stop()
        log.info("%s %s stopping", ctx.service, ctx.instance_id)
        if agent is not None:
            await agent.stop()
            with contextlib.suppress(FlareError):
                await ctx.configstore.delete(f"{TOPOLOGY_PREFIX}{ctx.service}/{ctx.instance_id}")
        for step in reversed(started):
            with contextlib.suppress(Exception):
                await step()
        if server is not None:
            await server.stop(2.0)
        if admin is not None:
            await admin.stop()
        await heap.stop()
        await ctx.close()
        with contextlib.suppress(Exception):
            await ctx.configstore.close()


def _health(ctx: ProcessContext, server: GrpcServer | None, running: Running, ready: bool) -> dict:
    health = {"status": "ok" if ready else "starting", "service": ctx.service, "instance_id": ctx.instance_id,
              "grpc": server.address if server is not None else "",
              "peers": ctx.topology.counts()}  # instances per service this one can call
    if running.health is not None:
        with contextlib.suppress(Exception):
            health.update(running.health())
    problems = health.get("problems", []) + problems_of(ctx._backends)
    if ready:
        health["problems"] = problems
        health["status"] = health_status(problems)
    return health
