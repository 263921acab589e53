"""`python -m services.session --config FILE`: the session service alone, over the Cache (Redis)."""

from __future__ import annotations

import sys

from controlplane.agent import appliers_for
from services.wiring.process import ProcessContext, Running, main
from services.session import SessionService
from services.session import api


async def build(ctx: ProcessContext) -> Running:
    session = SessionService(await ctx.cache(), ctx.config.session)
    return Running([api.register(session)], start=session.start, stop=session.stop,
                   appliers=appliers_for(session, ["routing"]))


if __name__ == "__main__":
    sys.exit(main("session", build))
