"""`file:///abs/dir[?fsync=batch|never&segment_bytes=N&tail_bytes=N]` — the Log port on local segment files.

The directory's layout, and taking and reading it, are in _logdir.py; segment files in
_logfiles.py, repair at start in _logrepair.py, groups in _loggroups.py, retention in
_logretention.py.

Group commit (the writer task here, its pieces in _logwriter.py): `produce` queues its
record and a single writer task drains the queue, so every produce issued while the
previous batch was on its way to disk (at least all of one event-loop tick) shares one
write and one fsync per partition. A record is visible to
consumers, and its produce returns, only after that write (and fsync, with fsync=batch).

Memory: the newest records of each partition stay in memory for consumers that keep up;
all partitions together hold at most `tail_bytes` (default 64 MiB), each an equal share,
oldest dropped first (`flare_memory_bytes{structure="log_tail"}`). Everything else is
read from the segment files.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from services.backends.log import LogConsumer, RebalanceCallback, RecordMetadata, TopicPartition
from services.common.bounds import ByteBudget, MiB
from services.common.errors import BackendError, BackendUnavailable, InvalidInput, NotFound
from services.common.health import Faults
from services.common.metrics import LOG_WRITE

from ._lane import ThreadLane
from ._logdir import close_log_dir_sync, grow_topic_sync, open_log_dir_sync
from ._logfiles import PartitionFiles, read_sync
from ._loggroups import FileLogConsumer, GroupCoordinator
from ._logoffsets import load_offsets_sync
from ._logrepair import Damage, read_reports_sync
from ._logretention import Retention, expired_segments, unlink_segments_sync
from ._logwriter import JobPlace, Pending, Sink, Syncs, check_record, fail_pending

__all__ = ["FileLog"]

_log = logging.getLogger(__name__)
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")  # Kafka's alphabet: safe as a directory name
_DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_TAIL_BYTES = 64 * MiB


class FileLog:
    def __init__(self, directory: str | Path, *, fsync: bool = True, segment_bytes: int = _DEFAULT_SEGMENT_BYTES,
                 tail_bytes: int = DEFAULT_TAIL_BYTES, retention_check_s: float = 30.0) -> None:
        self._dir = Path(directory)
        self._fsync = fsync
        self._segment_bytes = segment_bytes
        self.tail_budget = ByteBudget("log_tail", tail_bytes)
        self._topics: dict[str, list[PartitionFiles]] = {}
        self._groups: dict[str, GroupCoordinator] = {}
        self._waiters: dict[TopicPartition, set[asyncio.Event]] = {}
        self._consumers: set[FileLogConsumer] = set()
        self._round_robin: dict[str, int] = {}
        self._pending: list[Pending] = []
        self._pending_ready = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._io: ThreadLane | None = None  # segment writes: one job per batch, one at a time
        self._sync: Syncs | None = None  # that job's fdatasyncs (in parallel while they are slow)
        self._place = JobPlace("log_append")  # that job on the loop while it is quicker than a thread hop
        self._lock_fd: int | None = None
        self._topic_lock = asyncio.Lock()
        self._closed = False
        self.truncated_bytes = 0  # torn-tail bytes cut at the last start(), for tests and ops
        self.damage: list[Damage] = []  # what the last start() found and repaired
        self._reports: list[str] = []  # damage reports not yet cleared by the operator
        self._faults = Faults("log", _log)  # write faults now (a full disk), rate-limited in the log
        self._retention: dict[str, Retention] = {}
        self._retention_check_s = retention_check_s
        self._retention_task: asyncio.Task[None] | None = None
        self._retired: list = []  # deleted segments whose fds a read in flight may still use

    @classmethod
    def from_url(cls, url: str) -> FileLog:
        parts = urlsplit(url)
        if parts.scheme != "file" or parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InvalidInput("FileLog needs file:///absolute/dir", url=url)
        query = parse_qs(parts.query)
        mode = query.get("fsync", ["batch"])[0]
        if mode not in ("batch", "never"):
            raise InvalidInput("fsync must be 'batch' or 'never'", url=url)
        sizes = {}
        for name, default in (("segment_bytes", _DEFAULT_SEGMENT_BYTES), ("tail_bytes", DEFAULT_TAIL_BYTES)):
            try:
                sizes[name] = int(query.get(name, [str(default)])[0])
            except ValueError as exc:
                raise InvalidInput(f"{name} must be an integer", url=url) from exc
            if sizes[name] < 0:
                raise InvalidInput(f"{name} cannot be negative", url=url)
        return cls(parts.path, fsync=mode == "batch", **sizes)

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        if self._writer is not None:
            return
        self._closed = False
        try:
            opened = await asyncio.to_thread(open_log_dir_sync, self._dir)
            self._lock_fd, self._topics, self.damage, self._retention = opened
            self._reports = await asyncio.to_thread(read_reports_sync, self._dir)
        except OSError as exc:
            raise BackendUnavailable(f"cannot open log directory {self._dir}: {exc}") from exc
        self.truncated_bytes = sum(d.bad_bytes for d in self.damage if d.kind == "torn_tail")
        for damage in self.damage:
            if damage.kind == "torn_tail":
                _log.warning("log %s: %s", self._dir, damage.describe())
            else:
                _log.error("log %s: %s", self._dir, damage.describe())
        self._io = ThreadLane("filelog-io")
        self._sync = Syncs(ThreadPoolExecutor(max_workers=8, thread_name_prefix="filelog-sync"))
        self._writer = asyncio.create_task(self._write_forever(), name=f"filelog-writer:{self._dir}")
        self._retention_task = asyncio.create_task(self._retain_forever(), name=f"filelog-retention:{self._dir}")

    async def close(self) -> None:
        if self._writer is None:
            return
        # Refuse new work, then let the writer drain what is queued before it exits.
        self._closed = True
        self._pending_ready.set()
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retention_task
            self._retention_task = None
        try:
            await self._writer
        except asyncio.CancelledError:
            pass
        self._writer = None
        await self._io.close()  # a job cut off with the writer ends before the files close
        self._sync.pool.shutdown(wait=False)
        for consumer in list(self._consumers):
            consumer._wakeup.set()
        self._consumers.clear()
        for group in self._groups.values():
            group.close_sync()
        self._groups.clear()
        self._waiters.clear()
        retired, self._retired = self._retired, []
        await asyncio.to_thread(unlink_segments_sync, retired)
        topics, self._topics = self._topics, {}
        for parts in topics.values():
            for files in parts:
                files.drop_tail(self.tail_budget)
        lock_fd, self._lock_fd = self._lock_fd, None
        await asyncio.to_thread(close_log_dir_sync, topics, lock_fd)

    def _check_open(self) -> None:
        if self._writer is None or self._closed:
            raise BackendUnavailable("the log is not started or already closed")

    # -- topics ----------------------------------------------------------------------
    async def create_topic(self, topic: str, *, partitions: int, retention_ms: int | None = None,
                           retention_bytes: int | None = None) -> None:
        self._check_open()
        if not _TOPIC_NAME.match(topic):
            raise InvalidInput("topic names use letters, digits, '.', '_' and '-' only", topic=topic)
        if partitions < 1:
            raise InvalidInput("a topic needs at least one partition", partitions=partitions)
        for name, value in (("retention_ms", retention_ms), ("retention_bytes", retention_bytes)):
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise InvalidInput(f"{name} must be a positive integer", **{name: value})
        async with self._topic_lock:
            existing = len(self._topics.get(topic, ()))
            current = self._retention.get(topic, Retention())
            wanted = Retention(retention_ms, retention_bytes) if (retention_ms or retention_bytes) else current
            if partitions <= existing and wanted == current:
                return
            topic_dir = self._dir / "topics" / topic
            try:
                added = await asyncio.to_thread(grow_topic_sync, self._dir, topic_dir, existing,
                                                max(partitions, existing), wanted)
            except OSError as exc:
                raise BackendError(f"cannot create topic {topic!r}: {exc}") from exc
            self._topics.setdefault(topic, []).extend(added)
            self._retention[topic] = wanted
        for group in self._groups.values():
            if any(topic in member.topics for member in group.members):
                group.rebalance(self)

    def _partitions(self, topic: str) -> list[PartitionFiles]:
        self._check_open()
        parts = self._topics.get(topic)
        if parts is None:
            raise NotFound(f"no topic {topic!r}", topic=topic)
        return parts

    async def partitions_for(self, topic: str) -> int:
        return len(self._partitions(topic))

    async def end_offsets(self, topic: str) -> dict[int, int]:
        return {p: files.next_offset for p, files in enumerate(self._partitions(topic))}

    async def beginning_offsets(self, topic: str) -> dict[int, int]:
        return {p: files.log_start for p, files in enumerate(self._partitions(topic))}

    # -- producing -------------------------------------------------------------------
    def _enqueue(
        self, topic: str, parts: list[PartitionFiles], key: bytes | None, value: bytes,
        partition: int | None, timestamp_ms: int | None, sink: Sink, index: int,
    ) -> tuple[int, int]:
        check_record(key, value)
        if partition is None:
            if key is not None:
                partition = zlib.crc32(key) % len(parts)  # stable across processes, unlike hash()
            else:
                partition = self._round_robin.get(topic, 0) % len(parts)
                self._round_robin[topic] = partition + 1
        elif not 0 <= partition < len(parts):
            raise InvalidInput(f"topic {topic!r} has no partition {partition}", topic=topic)
        timestamp = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
        self._pending.append((parts[partition], key, bytes(value), timestamp, sink, index))
        return partition, timestamp

    async def produce(
        self, topic: str, value: bytes, *, key: bytes | None = None, partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> RecordMetadata:
        sink = Sink(1)
        partition, timestamp = self._enqueue(topic, self._partitions(topic), key, value, partition, timestamp_ms, sink, 0)
        self._pending_ready.set()
        return RecordMetadata(topic, partition, (await sink.future)[0], timestamp)

    async def produce_batch(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> list[RecordMetadata]:
        parts = self._partitions(topic)
        if not records:
            return []
        # Validate everything before queueing anything: a bad record fails the whole call.
        for key, value in records:
            check_record(key, value)
        sink = Sink(len(records))
        placed = [self._enqueue(topic, parts, key, value, None, None, sink, i) for i, (key, value) in enumerate(records)]
        self._pending_ready.set()
        offsets = await sink.future
        return [RecordMetadata(topic, p, o, ts) for (p, ts), o in zip(placed, offsets)]

    async def _write_forever(self) -> None:
        while True:
            await self._pending_ready.wait()
            self._pending_ready.clear()
            batch, self._pending = self._pending, []
            if batch:
                try:
                    await self._write_batch(batch)
                except Exception as exc:  # never strand a producer on a dead writer
                    _log.exception("log writer failed")
                    fail_pending(batch, BackendError(f"log write failed: {exc}"))
            if self._closed and not self._pending:
                return

    async def _write_batch(self, batch: list[Pending]) -> None:
        by_partition: dict[PartitionFiles, list[Pending]] = {}
        for item in batch:
            by_partition.setdefault(item[0], []).append(item)
        tail_share = self.tail_budget.limit // max(1, sum(len(parts) for parts in self._topics.values()))
        work = []
        for files, items in by_partition.items():
            try:
                if files.active.size >= self._segment_bytes and files.active.positions:
                    segment, write_fd = await self._io.run(functools.partial(files.roll_sync, files.next_offset))
                    files.install_segment(segment, write_fd)
            except OSError as exc:
                self._faults.fail("write", f"cannot roll a segment of {files.tp.topic}[{files.tp.partition}]: {exc}")
                fail_pending(items, BackendError(f"cannot roll log segment: {exc}"))
                continue
            work.append((files, items, files.next_offset, files.active.size))
        # All writes and their fdatasyncs in one job: a thread hop costs more than a
        # page-cache write, and each hop back to the loop waits for the GIL. The fdatasyncs
        # run in parallel inside the job while they are slow (concurrent ones share an ext4
        # journal commit, so eight partitions cost about as much as one), and the whole job
        # runs on the loop while it is quicker than the hop (JobPlace, _placement.py).
        started = time.perf_counter()
        syncs = self._sync if self._fsync else None
        if self._place.choose():
            results = self._place.timed(work, syncs, inline=True)
        else:
            results = await self._io.run(functools.partial(self._place.timed, work, syncs, inline=False))
        LOG_WRITE.observe(time.perf_counter() - started)
        for (files, items, first_offset, _), result in zip(work, results):
            if isinstance(result, BaseException):
                self._faults.fail("write", f"cannot write to {files.tp.topic}[{files.tp.partition}]: {result}")
                fail_pending(items, BackendUnavailable(f"log write failed: {result}"))
                continue
            self._faults.recover("write")
            positions, new_size = result
            files.apply_append(positions, [item[3] for item in items], new_size)
            files.remember_tail(first_offset, [(item[3], item[1], item[2]) for item in items],
                                budget=self.tail_budget, share=tail_share)
            for i, item in enumerate(items):
                item[4].resolve(item[5], first_offset + i)
            for event in self._waiters.get(files.tp, ()):
                event.set()

    async def _read(self, plans: list[tuple[int, int, int, int]]) -> list[list]:
        try:
            return await asyncio.to_thread(lambda: [read_sync(plan) for plan in plans])
        except OSError as exc:
            raise BackendUnavailable(f"log read failed: {exc}") from exc

    # -- consuming ---------------------------------------------------------------------
    def consumer(
        self, group: str, topics: Sequence[str], *,
        on_assign: RebalanceCallback | None = None, on_revoke: RebalanceCallback | None = None,
    ) -> LogConsumer:
        if not group:
            raise InvalidInput("a consumer group needs a name")
        return FileLogConsumer(self, group, list(topics), on_assign=on_assign, on_revoke=on_revoke)

    async def _group(self, name: str) -> GroupCoordinator:
        self._check_open()
        group = self._groups.get(name)
        if group is None:
            path = self._dir / "groups" / f"{quote(name, safe='')}.json"
            try:
                committed, sequence = await asyncio.to_thread(load_offsets_sync, path)
            except (OSError, ValueError) as exc:
                raise BackendError(f"cannot read offsets of group {name!r}: {exc}") from exc
            # Offsets are written so that a crash leaves the last or the one before
            # (_logoffsets.py) but not fsynced: a commit lost to a power cut only makes the
            # group re-read records it already processed, which a consumer must tolerate
            # anyway (the store is idempotent on msg_id), and an fsync per commit cost more
            # kernel time than everything else on the message path.
            group = self._groups.get(name)  # another task may have loaded it meanwhile
            if group is None:
                group = self._groups[name] = GroupCoordinator(name, path, committed, fsync=False, sequence=sequence)
        return group

    async def _retain_forever(self) -> None:
        while True:
            await asyncio.sleep(self._retention_check_s)
            try:
                await self.enforce_retention()
            except OSError:
                _log.warning("log %s: could not delete expired segments", self._dir, exc_info=True)

    async def enforce_retention(self) -> int:
        """Delete the segments each topic's retention lets go now; return how many."""
        retired, self._retired = self._retired, []
        now = int(time.time() * 1000)
        gone = []
        for topic, policy in self._retention.items():
            for files in self._topics.get(topic, ()):
                gone += files.drop_oldest(expired_segments(files, policy, now))
        # Close and unlink the previous round's: a read planned before it was dropped has
        # long finished, and this round's may still be in flight.
        await asyncio.to_thread(unlink_segments_sync, retired)
        for segment in gone:
            with contextlib.suppress(OSError):
                os.rename(segment.path, segment.path.with_suffix(".deleted"))
                segment.path = segment.path.with_suffix(".deleted")
        self._retired = gone
        if gone:
            _log.info("log %s: retention deleted %d segments", self._dir, len(gone))
        return len(gone)

    def problems(self) -> list[str]:
        """Why this log is degraded: damage found at start that the operator has not cleared
        (docs/operations.md), and write faults going on now."""
        return list(self._reports) + self._faults.reasons()

    async def committed_offsets(self, group: str, topic: str) -> dict[int, int]:
        coordinator = await self._group(group)
        return {tp.partition: offset for tp, offset in coordinator.committed.items() if tp.topic == topic}
