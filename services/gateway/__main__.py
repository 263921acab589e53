"""`python -m services.gateway --config FILE [--port WS] [--grpc-port P] [--node-id N]`.

Clients connect over WebSocket on `--port`; routers and sync push over the gateway's gRPC
API, found in the topology under service "gateway" with instance id = gateway id (what
sessions record as `gateway_id`). Every gateway needs its own `--node-id`: message ids
are minted here.
"""

from __future__ import annotations

import sys

from services.backends.revocations import Revocations
from services.common.ids import MessageIdGenerator
from services.wiring.process import ProcessContext, Running, main
from services.wiring.discovered import ROUTER, SESSION, SYNC, TopologyGatewayDirectory, pooled
from services.gateway import GatewayService
from services.gateway import api


async def build(ctx: ProcessContext) -> Running:
    cfg = ctx.config
    gateway_config = cfg.gateway.model_copy(update={
        "host": ctx.args.host or cfg.gateway.host,
        "port": ctx.args.port if ctx.args.port is not None else cfg.gateway.port,
    })
    router, sync, session = pooled(ctx.topology, ROUTER), pooled(ctx.topology, SYNC), pooled(ctx.topology, SESSION)
    for client in (router, sync, session):
        ctx.close_at_exit(client.close)  # a Pooled: it closes its channels
    peers = TopologyGatewayDirectory(ctx.topology)  # to close a device's old connection on another gateway
    ctx.close_at_exit(peers.close)
    # Revoked tokens and users, followed by watch on the ConfigStore the instance already has.
    revocations = Revocations(ctx.configstore)
    gateway = GatewayService(config=gateway_config, gateway_id=ctx.instance_id, token_secret=ctx.token_secret(),
                             router=router, sync=sync, session=session, ids=MessageIdGenerator(cfg.node_id),
                             peers=peers, revocations=revocations, recall_window_s=cfg.sync.recall_window_s,
                             sync_page_limit=cfg.sync.page_limit,
                             # The routers are remote: a tick's acks go at once and share batch calls.
                             ack_reports_in_flight=64)

    async def stop() -> None:
        await gateway.stop()
        await revocations.stop()

    running = Running([api.register(gateway)], start=gateway.start, stop=stop,
                      health=lambda: {"gateway_id": gateway.gateway_id, "url": gateway.url,
                                      "connections": gateway.connection_count})

    async def start() -> None:
        await revocations.start()  # before the first login: a revoked token never gets in
        await gateway.start()
        running.announce["ws"] = gateway.url  # the bound port is known only now

    running.start = start
    return running


if __name__ == "__main__":
    sys.exit(main("gateway", build))
