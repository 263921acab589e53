"""Device acks, batched: one report per (user, conversation) per event-loop tick.

At full rate there is one ack per delivered message; the gateway notes each and this
hands them to the router (DELIVERED to the sender) in one call per (user, conversation)
with every seq noted in that tick, or in one call for the whole tick where the router
takes that (`report_many`).
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
ReportMany = Callable[[list[tuple[str, str, list[int]]]], Awaitable[None]]


class DeliveredAcks:
    def __init__(self, report: Report, *, report_many: ReportMany | None = None, max_pending: int = 100_000,
                 in_flight: int = 1) -> None:
        """`report(user_id, conversation_id, seqs)`: RouterClient.on_delivered.
        `report_many(reports)`: the router's on_delivered_many, where it has one (in the
        core's process, or over a gateway worker's channel): the whole tick in one call.
        `max_pending`: seqs held for the next tick at most; beyond it an ack is dropped
        (its sender misses one DELIVERED, the message itself is delivered and stored).
        `in_flight`: reports of one tick made at once, without `report_many`. The split
        gateway's reports are gRPC calls that the router client batches (OnDeliveredBatch),
        which it can only do with several in flight."""
        self._report = report
        self._report_many = report_many
        self._max_pending = max_pending
        self._in_flight = max(1, in_flight)
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
        if self._report_many is not None:
            try:
                await self._report_many([(user_id, conversation_id, seqs)
                                         for (user_id, conversation_id), seqs in acks.items()])
            except FlareError:
                log.warning("could not report DELIVERED for %d acks", len(acks), exc_info=True)
            return
        items = list(acks.items())
        if self._in_flight == 1:
            for item in items:
                await self._report_one(item)
            return
        for start in range(0, len(items), self._in_flight):
            await asyncio.gather(*(self._report_one(item) for item in items[start:start + self._in_flight]))

    async def _report_one(self, item: tuple[tuple[str, str], list[int]]) -> None:
        (user_id, conversation_id), seqs = item
        try:
            await self._report(user_id, conversation_id, seqs)
        except FlareError:
            log.warning("could not report DELIVERED for %s in %s", user_id, conversation_id, exc_info=True)
