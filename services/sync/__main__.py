"""`python -m services.sync --config FILE`: cursors, incremental sync, recall/delete/read.

It pushes its events itself (its own Fanout over the session service and the gateways in
the topology), so it never calls a router to reach a device.
"""

from __future__ import annotations

import sys

from services.archive import TieredHistory
from services.wiring.process import ProcessContext, Running, main
from services.common.retry import RetryPolicy
from services.delivery import Fanout, Membership
from services.wiring.discovered import SESSION, TopologyGatewayDirectory, pooled
from services.sync import SyncService
from services.sync import api


async def build(ctx: ProcessContext) -> Running:
    cfg = ctx.config
    db = await ctx.messagedb()
    session, gateways = pooled(ctx.topology, SESSION), TopologyGatewayDirectory(ctx.topology)
    ctx.close_at_exit(session.close)  # a Pooled: it closes its channels
    ctx.close_at_exit(gateways.close)
    retry = RetryPolicy(max_attempts=cfg.router.max_attempts, base_delay=cfg.router.base_delay,
                        max_delay=cfg.router.max_delay, multiplier=cfg.router.multiplier)
    sync = SyncService(db=db, cache=await ctx.cache(), fanout=Fanout(session=session, gateways=gateways, retry=retry),
                       membership=Membership(db), config=cfg.sync,
                       history=TieredHistory(db, await ctx.objects()))
    return Running([api.register(sync)], start=sync.start, stop=sync.stop)


if __name__ == "__main__":
    sys.exit(main("sync", build))
