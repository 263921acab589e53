"""`python -m services.filter --config FILE`: the filter alone; rules come from the control plane.

Frequency limits are counted in the Cache (Redis), so a sender's limit holds however many
filter instances the routers spread its messages over.
"""

from __future__ import annotations

import sys

from controlplane.agent import appliers_for
from services.wiring.process import ProcessContext, Running, main
from services.common.documents.filter_rules import FILTER_RULES_KIND
from services.filter import CacheFrequencyLimiter, FilterService
from services.filter import api


async def build(ctx: ProcessContext) -> Running:
    cache = await ctx.cache()
    service = FilterService(limiter_factory=lambda *, limit, window: CacheFrequencyLimiter(cache, limit=limit,
                                                                                            window=window))
    return Running([api.register(service)], appliers=appliers_for(service, [FILTER_RULES_KIND]),
                   health=lambda: {"rules_generation": service.generation})


if __name__ == "__main__":
    sys.exit(main("filter", build))
