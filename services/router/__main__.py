"""`python -m services.router --config FILE`: the send path and delivery, peers over gRPC.

Filter, store and session are reached through discovery; gateways through the topology
(gateway id = instance id). Delivery's `shared` is the Cache: a device's ack may reach
another router instance than the one that delivered the message.
"""

from __future__ import annotations

import sys

from controlplane.agent import appliers_for
from services.wiring.process import ProcessContext, Running, main
from services.delivery import Delivery
from services.wiring.discovered import FILTER, SESSION, STORE, TopologyGatewayDirectory, pooled
from services.router import RouterService
from services.router import api


async def build(ctx: ProcessContext) -> Running:
    cache = await ctx.cache()
    filter_client, store_client = pooled(ctx.topology, FILTER), pooled(ctx.topology, STORE)
    session_client, gateways = pooled(ctx.topology, SESSION), TopologyGatewayDirectory(ctx.topology)
    for client in (filter_client, store_client, session_client, gateways):
        ctx.close_at_exit(client.close)
    delivery = Delivery(session=session_client, gateways=gateways, db=await ctx.messagedb(), log=await ctx.log(),
                        config=ctx.config.router, shared=cache)
    router = RouterService(filter=filter_client, store=store_client, delivery=delivery)
    return Running([api.register(router)], start=router.start, stop=router.stop,
                   appliers=appliers_for(router, ["routing"]), health=lambda: {"problems": router.problems()})


if __name__ == "__main__":
    sys.exit(main("router", build))
