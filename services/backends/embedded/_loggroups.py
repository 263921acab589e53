"""Consumer groups of one FileLog process: membership, rebalance and committed offsets.

Rebalance is cooperative and happens inside the members' own calls: the coordinator only
sets each member's *target* assignment and wakes it. A member gives up what left its
target (running `on_revoke` while it still owns the partitions, so it may commit there),
and claims a target partition only once no other member owns it. So a partition never has
two owners, and a busy old owner delays the new one — Kafka's max.poll.interval trade-off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from services.backends.log import LogRecord, RebalanceCallback, TopicPartition
from services.common.errors import BackendError, BackendUnavailable, Conflict, InvalidInput
from services.common.health import Faults

from ._logfiles import PartitionFiles, check_disk_fault
from ._logoffsets import OffsetsFile, encode_offsets

__all__ = ["GroupCoordinator", "FileLogConsumer"]

_log = logging.getLogger(__name__)


class _Log(Protocol):
    """What groups and consumers use of the FileLog they belong to. filelog.py imports this
    module; naming the needs here, rather than importing FileLog back, keeps it one-way."""

    _topics: dict[str, list[PartitionFiles]]
    _waiters: dict[TopicPartition, set[asyncio.Event]]
    _consumers: set[FileLogConsumer]
    _closed: bool
    _faults: Faults

    async def _group(self, name: str) -> GroupCoordinator: ...

    async def _read(self, plans: list[tuple[int, int, int, int]]) -> list[list]: ...


class GroupCoordinator:
    def __init__(self, name: str, path: Path, committed: dict[TopicPartition, int], *, fsync: bool,
                 sequence: int = 0) -> None:
        """`committed` and `sequence`: what _logoffsets.load_offsets_sync read from `path`."""
        self.name = name
        self.path = path
        self.committed = committed
        self._file = OffsetsFile(path, sequence)
        self.members: list[FileLogConsumer] = []  # join order: the round-robin order
        self.owner: dict[TopicPartition, FileLogConsumer] = {}
        self._fsync = fsync
        self._write_lock = asyncio.Lock()

    def close_sync(self) -> None:
        self._file.close_sync()

    def rebalance(self, log: _Log) -> None:
        """Round-robin every partition of the subscribed topics over the members subscribed to it."""
        targets: dict[FileLogConsumer, set[TopicPartition]] = {m: set() for m in self.members}
        topics = sorted({t for m in self.members for t in m.topics})
        turn = 0
        for topic in topics:
            candidates = [m for m in self.members if topic in m.topics]
            for partition in range(len(log._topics.get(topic, ()))):
                targets[candidates[turn % len(candidates)]].add(TopicPartition(topic, partition))
                turn += 1
        for member, target in targets.items():
            member._target = target
            member._wakeup.set()

    def released(self, tps: set[TopicPartition], member: FileLogConsumer) -> None:
        for tp in tps:
            if self.owner.get(tp) is member:
                del self.owner[tp]
        for other in self.members:
            other._wakeup.set()  # someone may be waiting to claim these

    async def commit(self, member: FileLogConsumer, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            if self.owner.get(tp) is not member:
                raise Conflict(f"{tp.topic}[{tp.partition}] is not assigned to this member of {self.name!r}")
            if not isinstance(offset, int) or offset < 0:
                raise InvalidInput("committed offsets are non-negative integers", offset=offset)
        async with self._write_lock:
            self.committed.update(offsets)
            payload = encode_offsets(self.committed)
            try:
                if self._fsync:
                    await asyncio.to_thread(self._write_sync, payload)
                else:
                    # No fsync: one pwrite into the page cache (_logoffsets.py: no rename,
                    # which ext4 turns into a data flush). Done here rather than in a thread
                    # because the store commits after every batch and waits for it before
                    # delivering, and a thread hop back to a busy loop costs milliseconds.
                    self._write_sync(payload)
            except OSError as exc:
                raise BackendError(f"could not persist offsets of group {self.name!r}: {exc}") from exc

    def _write_sync(self, payload: bytes) -> None:
        check_disk_fault("offsets")
        self._file.write_sync(payload, fsync=self._fsync)


class FileLogConsumer:
    def __init__(
        self, log: _Log, group: str, topics: Sequence[str], *,
        on_assign: RebalanceCallback | None, on_revoke: RebalanceCallback | None,
    ) -> None:
        self._log = log
        self._group_name = group
        self.topics = frozenset(topics)
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._group: GroupCoordinator | None = None
        self._target: set[TopicPartition] = set()
        self._owned: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._wakeup = asyncio.Event()
        self._sync_lock = asyncio.Lock()

    async def start(self) -> None:
        if self._group is not None:
            return
        group = await self._log._group(self._group_name)
        self._group = group
        group.members.append(self)
        self._log._consumers.add(self)
        group.rebalance(self._log)
        await self._sync()

    async def stop(self) -> None:
        group, self._group = self._group, None
        if group is None:
            return
        async with self._sync_lock:
            try:
                if self._owned and self._on_revoke is not None and not self._log._closed:
                    await self._on_revoke(set(self._owned))
            finally:
                self._release(set(self._owned), group)
                group.members.remove(self)
                self._log._consumers.discard(self)
                group.rebalance(self._log)

    def _release(self, tps: set[TopicPartition], group: GroupCoordinator) -> None:
        for tp in tps:
            self._log._waiters.get(tp, set()).discard(self._wakeup)
            self._positions.pop(tp, None)
        self._owned -= tps
        group.released(tps, self)

    async def _sync(self) -> None:
        """Apply the coordinator's target: revoke first, then claim what is free."""
        async with self._sync_lock:
            group = self._group
            if group is None:
                return
            revoked = self._owned - self._target
            if revoked:
                try:
                    if self._on_revoke is not None:
                        await self._on_revoke(set(revoked))
                finally:
                    self._release(revoked, group)
            claimable = {tp for tp in self._target - self._owned if tp not in group.owner}
            if not claimable:
                return
            for tp in claimable:
                group.owner[tp] = self
                files = self._log._topics[tp.topic][tp.partition]
                self._positions[tp] = group.committed.get(tp, files.log_start)
                self._log._waiters.setdefault(tp, set()).add(self._wakeup)
            self._owned |= claimable
            if self._on_assign is not None:
                await self._on_assign(set(claimable))

    def _check_running(self) -> GroupCoordinator:
        if self._log._closed:
            raise BackendUnavailable("the log is closed")
        if self._group is None:
            raise InvalidInput("consumer is not started")
        return self._group

    async def getmany(self, *, timeout_ms: int = 1000, max_records: int = 1000) -> dict[TopicPartition, list[LogRecord]]:
        self._check_running()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        while True:
            # Clear before looking, so an append during the look still wakes the wait below.
            self._wakeup.clear()
            await self._sync()
            self._check_running()
            batch = await self._fetch(max_records)
            if batch:
                return batch
            if self._lagging():  # only placeholders were read: more may follow at once
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return {}
            # asyncio.timeout, not wait_for: wait_for runs the wait as a task of its own,
            # one more loop iteration (and a task) between an append and its consumer.
            try:
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    def _lagging(self) -> bool:
        return any(self._log._topics[tp.topic][tp.partition].next_offset > self._positions[tp] for tp in self._owned)

    async def _fetch(self, max_records: int) -> dict[TopicPartition, list[LogRecord]]:
        # Water-filling: a partition with a deep backlog cannot starve the others.
        available = []
        for tp in self._owned:
            files = self._log._topics[tp.topic][tp.partition]
            if self._positions[tp] < files.log_start:
                # Retention deleted records this group had not read: resume at the new start
                # (Kafka's auto.offset.reset=earliest), and say how many were skipped.
                _log.warning("%s[%d]: group %r was at offset %d, retention deleted up to %d; %d records skipped",
                             tp.topic, tp.partition, self._group_name, self._positions[tp], files.log_start,
                             files.log_start - self._positions[tp])
                self._positions[tp] = files.log_start
            lag = files.next_offset - self._positions[tp]
            if lag > 0:
                available.append((lag, tp, files))
        available.sort(key=lambda item: item[0])
        plans = []
        out: dict[TopicPartition, list[LogRecord]] = {}
        budget = max_records
        for i, (lag, tp, files) in enumerate(available):
            share = min(lag, budget // (len(available) - i))
            if share <= 0:
                continue
            recent = files.from_tail(self._positions[tp], share)
            if recent:  # caught up: straight from memory
                out[tp] = [LogRecord(tp.topic, tp.partition, o, ts, k, v) for o, ts, k, v in recent]
                self._positions[tp] = recent[-1][0] + 1
                budget -= len(recent)
                continue
            plan = files.read_plan(self._positions[tp], share)
            if plan is not None:
                plans.append((tp, plan))
                budget -= plan[3]
        if not plans:
            return out
        decoded = await self._log._read([plan for _, plan in plans])
        for (tp, _), rows in zip(plans, decoded):
            # A seek or revoke during the read makes these rows stale: drop them.
            if tp not in self._owned or not rows or rows[0][0] != self._positions[tp]:
                continue
            self._positions[tp] = rows[-1][0] + 1
            # Placeholders of records lost to corruption keep offsets contiguous; nobody reads them.
            records = [LogRecord(tp.topic, tp.partition, o, ts, k, v) for o, ts, k, v in rows if v is not None]
            if records:
                out[tp] = records
        return out

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        group = self._check_running()
        try:
            await group.commit(self, offsets)
        except BackendError as exc:
            self._log._faults.fail("commit", str(exc))
            raise
        self._log._faults.recover("commit")

    async def committed(self, tp: TopicPartition) -> int | None:
        if self._group is not None:
            return self._group.committed.get(tp)
        return (await self._log._group(self._group_name)).committed.get(tp)

    def _owned_files(self, tp: TopicPartition):
        self._check_running()
        if tp not in self._owned:
            raise InvalidInput(f"{tp.topic}[{tp.partition}] is not assigned to this consumer")
        return self._log._topics[tp.topic][tp.partition]

    async def seek(self, tp: TopicPartition, offset: int) -> None:
        self._owned_files(tp)
        if offset < 0:
            raise InvalidInput("offset must be >= 0", offset=offset)
        self._positions[tp] = offset

    async def seek_to_timestamp(self, tp: TopicPartition, timestamp_ms: int) -> int:
        offset = self._owned_files(tp).offset_for_timestamp(timestamp_ms)
        self._positions[tp] = offset
        return offset

    def assignment(self) -> set[TopicPartition]:
        return set(self._owned)

    def position(self, tp: TopicPartition) -> int | None:
        return self._positions.get(tp)
