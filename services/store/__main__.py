"""`python -m services.store --config FILE`: accept API + one member of the store consumer group.

Several store instances split the log's partitions (Kafka consumer group); each hands its
persisted batches to a router instance, one batch after another, so per-conversation
order holds on the way to the devices.
"""

from __future__ import annotations

import sys

from controlplane.agent import appliers_for
from services.wiring.process import ProcessContext, Running, main
from services.wiring.discovered import DELIVERY, pooled
from services.store import StoreService
from services.store import api


async def build(ctx: ProcessContext) -> Running:
    routers = pooled(ctx.topology, DELIVERY)  # the routers' Deliver RPC
    ctx.close_at_exit(routers.close)  # a Pooled: it closes its channels
    store = StoreService(log=await ctx.log(), db=await ctx.messagedb(), cache=await ctx.cache(),
                         config=ctx.config.store, delivery=routers)
    return Running([api.register(store)], start=store.start, stop=store.stop,
                   appliers=appliers_for(store, ["tiering"]), health=lambda: {"persisted": store.persisted})


if __name__ == "__main__":
    sys.exit(main("store", build))
