"""On-disk layout of one FileLog partition: append-only segment files plus an in-memory index.

A partition is a directory of segments named by their first offset (`00000000000000000000.log`).
A record is

    length u32 | crc32 u32 | offset i64 | timestamp_ms i64 | key_len i32 (-1: no key) | key | value

where `length` counts the bytes after the crc and the crc covers exactly those bytes.
key_len -2 marks a placeholder for a record lost to corruption (no key, no value): it keeps
offsets contiguous, and readers skip it. Opening a partition validates every record and
tells a torn tail from corruption: see _logrepair.py.

The index keeps, per record, its file position and a running maximum of timestamps. The
running maximum makes "first record with timestamp >= t" a bisect even when producers pass
out-of-order timestamps (Kafka's time index does the same).

Threading: functions named `*_sync` do blocking I/O and run in worker threads. They read the
index but never mutate it; the event loop applies their results, so index state is only ever
changed on the loop thread and reads computed there stay consistent.
"""

from __future__ import annotations

import errno
import os
import struct
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from services.common.bounds import ENTRY_OVERHEAD, ByteBudget
from services.common.paths import create_private

__all__ = ["Segment", "PartitionFiles", "encode_record", "decode_records", "MAX_RECORD_BYTES", "check_disk_fault"]

_FRAME = struct.Struct(">II")  # length, crc32
_HEAD = struct.Struct(">qqi")  # offset, timestamp_ms, key_len
MAX_RECORD_BYTES = 16 * 1024 * 1024
_SUFFIX = ".log"
LOST_KEY_LEN = -2
# Test-only fault switch: while the file this names exists, writes of the log fail with
# ENOSPC, as on a full disk: all of them, or only the committed offsets if the file says
# "offsets" (a nearly full disk: appends still fit the segment's last block, a new file does not).
_ENOSPC_SWITCH = os.environ.get("FLARE_FAULT_ENOSPC_FILE", "")


def check_disk_fault(what: str = "records") -> None:
    if not _ENOSPC_SWITCH:
        return
    try:
        with open(_ENOSPC_SWITCH) as handle:
            mode = handle.read().strip() or "all"
    except FileNotFoundError:
        return
    if mode == "all" or mode == what:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def encode_record(offset: int, timestamp_ms: int, key: bytes | None, value: bytes, *, lost: bool = False) -> bytes:
    head = _HEAD.pack(offset, timestamp_ms, LOST_KEY_LEN if lost else -1 if key is None else len(key))
    key_bytes = key or b""
    crc = zlib.crc32(value, zlib.crc32(key_bytes, zlib.crc32(head)))
    return b"".join((_FRAME.pack(len(head) + len(key_bytes) + len(value), crc), head, key_bytes, value))


def decode_records(buffer: bytes, count: int) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """(offset, timestamp_ms, key, value) for the first `count` records of a buffer the index
    vouches for (already validated at open or written by us), so no crc check here. A lost
    record's placeholder comes back with value None."""
    out = []
    view = memoryview(buffer)
    pos = 0
    frame_size, head_size = _FRAME.size, _HEAD.size
    for _ in range(count):
        length = _FRAME.unpack_from(buffer, pos)[0]
        start = pos + frame_size
        offset, timestamp_ms, key_len = _HEAD.unpack_from(buffer, start)
        body = start + head_size
        if key_len == LOST_KEY_LEN:
            pos = start + length
            out.append((offset, timestamp_ms, None, None))
            continue
        if key_len < 0:
            key = None
            value_start = body
        else:
            key = bytes(view[body : body + key_len])
            value_start = body + key_len
        pos = start + length
        out.append((offset, timestamp_ms, key, bytes(view[value_start:pos])))
    return out


@dataclass(eq=False)
class Segment:
    base_offset: int
    path: Path
    read_fd: int
    size: int = 0  # bytes of valid records
    positions: array = field(default_factory=lambda: array("q"))  # file position per record

    @property
    def next_offset(self) -> int:
        return self.base_offset + len(self.positions)


class PartitionFiles:
    """Segments and index of one topic-partition. Mutated only on the event loop thread."""

    def __init__(self, directory: Path, segments: list[Segment], max_timestamps: array, write_fd: int) -> None:
        self.directory = directory
        self.segments = segments
        self.max_timestamps = max_timestamps  # indexed by offset - log_start
        self.write_fd = write_fd  # O_APPEND fd of the newest segment
        # The newest records, as written: a consumer that keeps up reads them from here
        # instead of from the file, which saves a thread hop per fetch on the hot path.
        # Bounded by bytes (the FileLog's tail budget), not by count: 2 KiB bodies times
        # a fixed count was most of the RSS of a busy node.
        self.tail: deque[tuple[int, int, bytes | None, bytes]] = deque()
        self.tail_bytes = 0
        self._bases = [s.base_offset for s in segments]
        self.tp: object = None  # the TopicPartition, set by the FileLog that opened it

    def close_sync(self) -> None:
        for fd in [self.write_fd] + [s.read_fd for s in self.segments]:
            try:
                os.close(fd)
            except OSError:
                pass

    # -- index queries (loop thread) ---------------------------------------------------
    @property
    def log_start(self) -> int:
        return self.segments[0].base_offset

    @property
    def next_offset(self) -> int:
        return self.segments[-1].next_offset

    @property
    def active(self) -> Segment:
        return self.segments[-1]

    def offset_for_timestamp(self, timestamp_ms: int) -> int:
        return self.log_start + bisect_left(self.max_timestamps, timestamp_ms)

    def read_plan(self, offset: int, max_records: int) -> tuple[int, int, int, int] | None:
        """(fd, position, nbytes, count) covering up to max_records from offset, within one segment."""
        if offset < self.log_start or offset >= self.next_offset:
            return None
        segment = self.segments[bisect_right(self._bases, offset) - 1]
        index = offset - segment.base_offset
        end_index = min(len(segment.positions), index + max_records)
        start = segment.positions[index]
        end = segment.positions[end_index] if end_index < len(segment.positions) else segment.size
        return segment.read_fd, start, end - start, end_index - index

    # -- appending -----------------------------------------------------------------------
    def roll_sync(self, base_offset: int) -> tuple[Segment, int]:
        """Create the next segment file; the loop installs it with `install_segment`."""
        path = _create_segment_file(self.directory, base_offset)
        return Segment(base_offset, path, os.open(path, os.O_RDONLY)), os.open(path, os.O_WRONLY | os.O_APPEND)

    def drop_oldest(self, count: int) -> list[Segment]:
        """Forget the `count` oldest segments (never the active one); the caller unlinks them."""
        count = min(count, len(self.segments) - 1)
        if count <= 0:
            return []
        gone, self.segments = self.segments[:count], self.segments[count:]
        del self._bases[:count]
        del self.max_timestamps[: sum(len(segment.positions) for segment in gone)]
        return gone

    def install_segment(self, segment: Segment, write_fd: int) -> None:
        os.close(self.write_fd)
        self.segments.append(segment)
        self._bases.append(segment.base_offset)
        self.write_fd = write_fd

    def write_sync(self, payload: bytes) -> None:
        """Append one batch with as few syscalls as the OS allows; undo a partial write."""
        size_before = self.active.size
        try:
            check_disk_fault()
            view = memoryview(payload)
            while view:
                written = os.write(self.write_fd, view)
                view = view[written:]
        except OSError:
            try:
                os.ftruncate(self.write_fd, size_before)
            except OSError:
                pass  # reopen will cut the torn tail instead
            raise

    def remember_tail(self, first_offset: int, records: list[tuple[int, bytes | None, bytes]], *,
                      budget: ByteBudget, share: int) -> None:
        """Keep (offset, timestamp, key, value) of records just appended, in offset order,
        then drop the oldest until this partition holds at most `share` bytes (its part
        of the log-wide `budget`)."""
        tail = self.tail
        if tail and tail[-1][0] != first_offset - 1:
            self.drop_tail(budget)  # never leave a hole: the tail is always one contiguous run
        added = 0
        for i, (ts, key, value) in enumerate(records):
            tail.append((first_offset + i, ts, key, value))
            added += _tail_cost(key, value)
        self.tail_bytes += added
        budget.used += added
        while tail and self.tail_bytes > share:
            _, _, key, value = tail.popleft()
            cost = _tail_cost(key, value)
            self.tail_bytes -= cost
            budget.used -= cost
            budget.evictions += 1

    def drop_tail(self, budget: ByteBudget) -> None:
        budget.used -= self.tail_bytes
        self.tail_bytes = 0
        self.tail.clear()

    def from_tail(self, offset: int, max_records: int) -> list[tuple[int, int, bytes | None, bytes]] | None:
        """Records from offset if the tail still holds offset, else None (read the file)."""
        tail = self.tail
        if not tail or offset < tail[0][0] or offset > tail[-1][0]:
            return None
        # A consumer keeps up, so what it asks for is the newest few records of a tail of
        # thousands: walk in from the end that is nearer (islice from the left walks every
        # record before `start`, which was 3 % of the core's CPU at full rate).
        start = offset - tail[0][0]
        from_end = len(tail) - start
        if from_end > start:
            return list(islice(tail, start, start + max_records))
        newest = list(islice(reversed(tail), from_end))
        newest.reverse()
        return newest[:max_records]

    def apply_append(self, positions: list[int], timestamps: list[int], new_size: int) -> None:
        segment = self.active
        segment.positions.extend(positions)
        running = self.max_timestamps[-1] if self.max_timestamps else -(1 << 63)
        for ts in timestamps:
            if ts > running:
                running = ts
            self.max_timestamps.append(running)
        segment.size = new_size


def _tail_cost(key: bytes | None, value: bytes) -> int:
    return len(value) + (len(key) if key else 0) + ENTRY_OVERHEAD


def read_sync(plan: tuple[int, int, int, int]) -> list[tuple[int, int, bytes | None, bytes]]:
    fd, position, nbytes, count = plan
    return decode_records(os.pread(fd, nbytes, position), count)


def fsync_dir_sync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_segment_file(directory: Path, base_offset: int) -> Path:
    path = directory / f"{base_offset:020d}{_SUFFIX}"
    os.close(create_private(path))  # 0600: messages are nobody else's to read
    fsync_dir_sync(directory)  # the new name must survive a crash as well as its bytes
    return path
