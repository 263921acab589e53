"""Replay's own reader: a consumer in a group of its own, positioned only by seeks.

It never commits, so the live group's offsets (and every other group's) stay as they are;
the group name carries the run id so two replays do not share partitions either.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from services.backends.log import Log, LogConsumer, LogRecord, TopicPartition
from services.common.errors import BackendUnavailable

__all__ = ["ReplayReader", "replay_group"]


def replay_group(run_id: str) -> str:
    return f"flare-replay.{run_id}"


class ReplayReader:
    def __init__(self, log: Log, topic: str, run_id: str, *, idle_timeout_s: float = 30.0) -> None:
        self._log = log
        self._topic = topic
        self._group = replay_group(run_id)
        self._idle_timeout_s = idle_timeout_s
        self._consumer: LogConsumer | None = None
        self.partitions = 0

    async def __aenter__(self) -> ReplayReader:
        self.partitions = await self._log.partitions_for(self._topic)
        self._consumer = self._log.consumer(self._group, [self._topic])
        await self._consumer.start()
        wanted = {TopicPartition(self._topic, p) for p in range(self.partitions)}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        # A group of one member: it is assigned every partition once it has joined.
        while self._consumer.assignment() != wanted:
            if loop.time() > deadline:
                raise BackendUnavailable(f"replay consumer was not assigned all of {self._topic}")
            await self._consumer.getmany(timeout_ms=100, max_records=1)  # records discarded: seeks follow
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def _live(self) -> LogConsumer:
        assert self._consumer is not None, "use ReplayReader as an async context manager"
        return self._consumer

    async def offset_for_time(self, partition: int, timestamp_ms: int) -> int:
        """The first offset with timestamp >= timestamp_ms; the end offset if none."""
        return await self._live().seek_to_timestamp(TopicPartition(self._topic, partition), timestamp_ms)

    async def scan(self, ranges: dict[int, tuple[int, int]], *, max_records: int = 2000,
                   ) -> AsyncIterator[tuple[int, list[LogRecord]]]:
        """Records of each partition in [lo, hi), in offset order per partition, in chunks."""
        consumer = self._live()
        todo = {p: lo for p, (lo, hi) in ranges.items() if lo < hi}
        for partition, lo in todo.items():
            await consumer.seek(TopicPartition(self._topic, partition), lo)
        loop = asyncio.get_running_loop()
        last_progress = loop.time()
        while todo:
            batches = await consumer.getmany(timeout_ms=200, max_records=max_records)
            progressed = False
            for tp, records in batches.items():
                expected = todo.get(tp.partition)
                if expected is None:
                    continue  # done or not asked for: live traffic read past the range
                hi = ranges[tp.partition][1]
                chunk = [r for r in records if expected <= r.offset < hi]
                if not chunk:
                    continue
                progressed = True
                todo[tp.partition] = chunk[-1].offset + 1
                if todo[tp.partition] >= hi:
                    del todo[tp.partition]
                yield tp.partition, chunk
            if progressed:
                last_progress = loop.time()
            elif loop.time() - last_progress > self._idle_timeout_s:
                missing = ", ".join(f"{p}@{o}" for p, o in sorted(todo.items()))
                raise BackendUnavailable(f"the log stopped returning records of {self._topic} ({missing})")
