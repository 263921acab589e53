"""On-disk layout of one FileLog partition: append-only segment files plus an in-memory index.

A partition is a directory of segments named by their first offset (`00000000000000000000.log`).
A record is

    length u32 | crc32 u32 | offset i64 | timestamp_ms i64 | key_len i32 (-1: no key) | key | value

where `length` counts the bytes after the crc and the crc covers exactly those bytes. A crash
can only tear the tail of the newest segment (writes are sequential), so opening a partition
validates every record and truncates the newest segment at the first bad one; damage in an
older segment is real corruption and is reported rather than silently cut away.

The index keeps, per record, its file position and a running maximum of timestamps. The
running maximum makes "first record with timestamp >= t" a bisect even when producers pass
out-of-order timestamps (Kafka's time index does the same).

Threading: functions named `*_sync` do blocking I/O and run in worker threads. They read the
index but never mutate it; the event loop applies their results, so index state is only ever
changed on the loop thread and reads computed there stay consistent.
"""

from __future__ import annotations

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
from services.common.errors import BackendError

__all__ = ["Segment", "PartitionFiles", "encode_record", "decode_records", "MAX_RECORD_BYTES"]

_FRAME = struct.Struct(">II")  # length, crc32
_HEAD = struct.Struct(">qqi")  # offset, timestamp_ms, key_len
MAX_RECORD_BYTES = 16 * 1024 * 1024
_SUFFIX = ".log"


def encode_record(offset: int, timestamp_ms: int, key: bytes | None, value: bytes) -> bytes:
    head = _HEAD.pack(offset, timestamp_ms, -1 if key is None else len(key))
    key_bytes = key or b""
    crc = zlib.crc32(value, zlib.crc32(key_bytes, zlib.crc32(head)))
    return b"".join((_FRAME.pack(len(head) + len(key_bytes) + len(value), crc), head, key_bytes, value))


def decode_records(buffer: bytes, count: int) -> list[tuple[int, int, bytes | None, bytes]]:
    """(offset, timestamp_ms, key, value) for the first `count` records of a buffer the index
    vouches for (already validated at open or written by us), so no crc check here."""
    out = []
    view = memoryview(buffer)
    pos = 0
    frame_size, head_size = _FRAME.size, _HEAD.size
    for _ in range(count):
        length = _FRAME.unpack_from(buffer, pos)[0]
        start = pos + frame_size
        offset, timestamp_ms, key_len = _HEAD.unpack_from(buffer, start)
        body = start + head_size
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

    # -- opening ---------------------------------------------------------------------
    @classmethod
    def open_sync(cls, directory: Path) -> tuple[PartitionFiles, int]:
        """Open (creating if needed), validate and index; return it and the bytes cut off a torn tail."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = sorted(directory.glob(f"*{_SUFFIX}"))
        if not paths:
            paths = [_create_segment_file(directory, 0)]
        segments: list[Segment] = []
        max_timestamps = array("q")
        truncated = 0
        expected = int(paths[0].stem)
        for i, path in enumerate(paths):
            if int(path.stem) != expected:
                raise BackendError(f"log segment {path} starts at {path.stem}, expected offset {expected}")
            segment, torn_at = _scan_segment(path, expected, max_timestamps)
            if torn_at is not None:
                if i != len(paths) - 1:
                    raise BackendError(f"log segment {path} is corrupt at byte {torn_at} (not the newest segment)")
                truncated = path.stat().st_size - torn_at
                os.truncate(path, torn_at)
            segments.append(segment)
            expected = segment.next_offset
        write_fd = os.open(segments[-1].path, os.O_WRONLY | os.O_APPEND)
        return cls(directory, segments, max_timestamps, write_fd), truncated

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

    def install_segment(self, segment: Segment, write_fd: int) -> None:
        os.close(self.write_fd)
        self.segments.append(segment)
        self._bases.append(segment.base_offset)
        self.write_fd = write_fd

    def write_sync(self, payload: bytes) -> None:
        """Append one batch with as few syscalls as the OS allows; undo a partial write."""
        size_before = self.active.size
        try:
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
        start = offset - tail[0][0]
        return list(islice(tail, start, start + max_records))

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
    path.touch(exist_ok=True)
    fsync_dir_sync(directory)  # the new name must survive a crash as well as its bytes
    return path


def _scan_segment(path: Path, base_offset: int, max_timestamps: array) -> tuple[Segment, int | None]:
    """Index a segment; also return the byte position of the first invalid record, if any."""
    data = path.read_bytes()
    segment = Segment(base_offset, path, os.open(path, os.O_RDONLY))
    running = max_timestamps[-1] if max_timestamps else -(1 << 63)
    pos, expected, total = 0, base_offset, len(data)
    frame_size, head_size = _FRAME.size, _HEAD.size
    while pos < total:
        if pos + frame_size + head_size > total:
            break
        length, crc = _FRAME.unpack_from(data, pos)
        end = pos + frame_size + length
        if length < head_size or length > MAX_RECORD_BYTES + head_size or end > total:
            break
        if zlib.crc32(memoryview(data)[pos + frame_size : end]) != crc:
            break
        offset, timestamp_ms, key_len = _HEAD.unpack_from(data, pos + frame_size)
        if offset != expected or not -1 <= key_len <= length - head_size:
            break
        segment.positions.append(pos)
        if timestamp_ms > running:
            running = timestamp_ms
        max_timestamps.append(running)
        expected += 1
        pos = end
    segment.size = pos
    return segment, (pos if pos < total else None)
