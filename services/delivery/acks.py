"""Device acks, batched: one report per (user, conversation) per event-loop tick.

At full rate there is one ack per delivered message; the gateway notes each and this
hands them to the router (DELIVERED to the sender) in one call per (user, conversation)
with every seq noted in that tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

from services.common.errors import FlareError

__all__ = ["DeliveredAcks"]

log = logging.getLogger("flare.delivery.acks")

Report = Callable[[str, str, Sequence[int]], Awaitable[None]]


class DeliveredAcks:
    def __init__(self, report: Report, *, max_pending: int = 100_000) -> None:
        """`report(user_id, conversation_id, seqs)`: RouterClient.on_delivered.
        `max_pending`: seqs held for the next tick at most; beyond it an ack is dropped
        (its sender misses one DELIVERED, the message itself is delivered and stored)."""
        self._report = report
        self._max_pending = max_pending
        self._pending = 0
        self._acks: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._flush_scheduled = False

    def note(self, user_id: str, conversation_id: str, seq: int) -> None:
        if self._pending >= self._max_pending:
            return
        self._acks[(user_id, conversation_id)].append(seq)
        self._pending += 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        acks, self._acks, self._pending = self._acks, defaultdict(list), 0
        asyncio.get_running_loop().create_task(self._send(acks))

    async def _send(self, acks: dict[tuple[str, str], list[int]]) -> None:
        for (user_id, conversation_id), seqs in acks.items():
            try:
                await self._report(user_id, conversation_id, seqs)
            except FlareError:
                log.warning("could not report DELIVERED for %s in %s", user_id, conversation_id, exc_info=True)
