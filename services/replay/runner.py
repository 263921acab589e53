"""Plan a replay and run it: read the planned ranges, feed the target, checkpoint, summarise."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.backends.log import Log
from services.backends.messagedb import MessageDB

from .checkpoint import CheckpointStore
from .plan import PartitionPlan, ReplayPlan
from .reader import ReplayReader
from .store_target import Entry, StoreTarget, Tally, decode, not_persisted
from .window import Window

__all__ = ["ReplayResult", "new_run_id", "make_plan", "run_replay", "CONTEXT_RECORDS"]

log_ = logging.getLogger("flare.replay")

CONTEXT_RECORDS = 2000  # read on each side of a partition's range to find stored neighbours

Progress = Callable[[int, int], None]  # (window records read, window records planned)


def new_run_id() -> str:
    return time.strftime("rp-%Y%m%dT%H%M%SZ-", time.gmtime()) + secrets.token_hex(3)


@dataclass(slots=True)
class ReplayResult:
    plan: ReplayPlan
    tally: Tally
    dry_run: bool
    status: str  # done | dry-run
    awaiting_owner: dict[int, int] = field(default_factory=dict)  # partition -> offset not yet committed

    def to_dict(self) -> dict[str, object]:
        return {"run_id": self.plan.run_id, "dry_run": self.dry_run, "status": self.status,
                "plan": self.plan.to_dict(), "summary": self.tally.to_dict(),
                "left_to_live": sum(p.left_to_live for p in self.plan.partitions),
                "awaiting_owner": {str(p): o for p, o in self.awaiting_owner.items()}}


async def make_plan(reader: ReplayReader, log: Log, *, run_id: str, topic: str, target: str, window: Window,
                    live_group: str, conversation: str | None) -> ReplayPlan:
    beginning = await log.beginning_offsets(topic)
    committed = await log.committed_offsets(live_group, topic)
    plan = ReplayPlan(run_id=run_id, topic=topic, target=target, window=window, live_group=live_group,
                      conversation=conversation, created_at_ms=int(time.time() * 1000))
    for partition in range(reader.partitions):
        plan.partitions.append(PartitionPlan(
            partition=partition, beginning=beginning.get(partition, 0),
            start=await reader.offset_for_time(partition, window.since_ms),
            end=await reader.offset_for_time(partition, window.until_ms),
            live_committed=committed.get(partition),
        ))
    return plan


def _read_range(p: PartitionPlan, context: int) -> tuple[int, int]:
    if p.first_unread >= p.stop:
        return p.stop, p.stop
    committed = p.stop if p.live_committed is None else max(p.stop, p.live_committed)
    return max(p.beginning, p.first_unread - context), min(p.stop + context, committed)


async def run_replay(plan: ReplayPlan, *, reader: ReplayReader, log: Log, db: MessageDB, dry_run: bool,
                     checkpoints: CheckpointStore | None, tally: Tally | None = None,
                     on_progress: Progress | None = None, context: int = CONTEXT_RECORDS,
                     owner_timeout_s: float = 60.0, checkpoint_every_s: float = 1.0, chunk: int = 2000,
                     ) -> ReplayResult:
    target = StoreTarget(db=db, log=log, topic=plan.topic, dry_run=dry_run)
    if tally is not None:
        target.tally = tally
    ranges = {p.partition: _read_range(p, context) for p in plan.partitions}
    by_partition = {p.partition: p for p in plan.partitions}
    for partition, (lo, _) in ranges.items():
        target.start_partition(partition, lo, decided=by_partition[partition].decided)
    key = plan.conversation.encode() if plan.conversation else None
    total = plan.to_read
    read = 0
    last_saved = time.monotonic()

    def settle_all() -> None:
        for p in plan.partitions:
            target.settle(p.partition)
            p.resume_from = max(p.first_unread, min(target.floor(p.partition), p.stop))
            p.decided = target.undecided_tail(p.partition)

    if on_progress is not None:
        on_progress(0, total)
    async for partition, records in reader.scan(ranges, max_records=chunk):
        pp = by_partition[partition]
        entries = []
        for record in records:
            in_window = pp.first_unread <= record.offset < pp.stop and record.timestamp_ms in plan.window
            if pp.first_unread <= record.offset < pp.stop:
                read += 1
            if key is not None and record.key != key:
                continue
            entries.append(Entry(record, decode(record), in_window))
        await target.feed(partition, entries)
        if records[-1].offset + 1 >= ranges[partition][1]:
            await target.finish_partition(partition)
        if checkpoints is not None and not dry_run and time.monotonic() - last_saved >= checkpoint_every_s:
            settle_all()
            checkpoints.save(plan, target.tally, status="running")
            last_saved = time.monotonic()
        if on_progress is not None:
            on_progress(read, total)
    for partition in ranges:
        await target.finish_partition(partition)
    settle_all()
    result = ReplayResult(plan=plan, tally=target.tally, dry_run=dry_run, status="dry-run" if dry_run else "done")
    if not dry_run:
        if checkpoints is not None:
            checkpoints.save(plan, target.tally, status="done")
        result.awaiting_owner = await _wait_for_owner(log, plan, target.appended_offsets, owner_timeout_s)
        if not result.awaiting_owner and target.appended:
            # The owner has read them; check it kept them rather than trust that it did.
            lost = await not_persisted(db, target.appended)
            if lost:
                log_.error("replay: the live owner did not persist %d handed-back messages (first msg_id %s)",
                           len(lost), lost[0].msg_id)
                target.tally.appended -= len(lost)
                target.tally.errors += len(lost)
                if checkpoints is not None:
                    checkpoints.save(plan, target.tally, status="done")
    return result


async def _wait_for_owner(log: Log, plan: ReplayPlan, produced: dict[int, int], timeout_s: float) -> dict[int, int]:
    """Wait until the live owner has committed past what replay handed it; what it has not yet."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        committed = await log.committed_offsets(plan.live_group, plan.topic)
        waiting = {p: o for p, o in produced.items() if committed.get(p, -1) <= o}
        if not waiting or loop.time() >= deadline:
            return waiting
        await asyncio.sleep(0.2)
