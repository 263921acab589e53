"""Opening a FileLog partition: validate every record, tell a torn tail from corruption.

A crash can only tear the *end* of the newest segment, and only a write whose produce never
returned (with fsync=batch nothing is acknowledged before its fdatasync): so an incomplete
frame there is cut, with a warning, and nothing acknowledged is lost.

Anything else is corruption: a complete frame whose crc does not match, bad bytes followed
by intact records, damage in an older segment. Then records were lost that a producer may
have been told were stored, and cutting the segment at the first bad byte (what this code
used to do) silently threw away every intact record after it. Instead:

  1. the damaged segment is copied to `<log>/damage/` untouched, for the operator;
  2. intact records after the damage are found again (by their offset field and crc);
  3. the segment is rewritten with a *placeholder* (key_len -2, no value) for every lost
     offset, so offsets stay contiguous, no offset is ever handed out twice, and committed
     offsets keep their meaning; consumers skip placeholders;
  4. a JSON report beside the copy names the lost offsets and their time range. The log
     reports itself degraded while reports are there; docs/operations.md says what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import time
import zlib
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path

from services.common.errors import BackendError
from services.common.paths import create_private, ensure_private_dir, write_private

from ._logfiles import (
    _FRAME, _HEAD, _SUFFIX, LOST_KEY_LEN, MAX_RECORD_BYTES, PartitionFiles, Segment, _create_segment_file,
    encode_record, fsync_dir_sync,
)

__all__ = ["Damage", "open_partition_sync", "DAMAGE_DIR"]

DAMAGE_DIR = "damage"
_RESYNC_OFFSETS = 4096  # how far past the damage we look for the next intact record's offset
_FALSE_HITS = 64  # per offset: byte patterns that look like it but fail the crc


@dataclass
class Damage:
    """What opening a partition found wrong, and what it did about it."""

    topic: str
    partition: int
    segment: str
    kind: str  # "torn_tail": cut, never acknowledged; "corrupt": records lost;
    # "committed_past_end": a consumer group had read records the log no longer has
    at_byte: int
    bad_bytes: int
    lost_offsets: list[int] = field(default_factory=list)  # [first, end): gone for good
    after_ms: int | None = None  # timestamp of the last intact record before the damage
    before_ms: int | None = None  # timestamp of the first intact record after it
    copy: str | None = None  # the untouched damaged segment

    def describe(self) -> str:
        if self.kind == "committed_past_end":
            end, committed = self.lost_offsets
            group = Path(self.segment).stem
            return (f"{self.topic}[{self.partition}]: group {group!r} had committed offset {committed} but the log "
                    f"ends at {end}: records {end}..{committed - 1} are gone; the group resumes at {end}")
        where = f"{self.topic}[{self.partition}] segment {Path(self.segment).name} at byte {self.at_byte}"
        if self.kind == "torn_tail":
            return f"{where}: cut {self.bad_bytes} bytes of an interrupted write (a torn tail)"
        first, end = self.lost_offsets
        span = "no records" if end == first else f"offsets {first}..{end - 1} ({end - first} records)"
        when = " between " + " and ".join(
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000)) if ms is not None else "?"
            for ms in (self.after_ms, self.before_ms)
        )
        return f"{where}: {self.bad_bytes} corrupt bytes, lost {span}{when}; copy in {self.copy}"


@dataclass
class _Intact:
    pos: int
    end: int
    offset: int
    timestamp_ms: int


def _parse_at(data: bytes, pos: int) -> _Intact | None:
    """The record framed at pos if it is whole and its crc matches."""
    total = len(data)
    if pos < 0 or pos + _FRAME.size + _HEAD.size > total:
        return None
    length, crc = _FRAME.unpack_from(data, pos)
    end = pos + _FRAME.size + length
    if length < _HEAD.size or length > MAX_RECORD_BYTES + _HEAD.size or end > total:
        return None
    offset, timestamp_ms, key_len = _HEAD.unpack_from(data, pos + _FRAME.size)
    if key_len == LOST_KEY_LEN:
        if length != _HEAD.size:
            return None
    elif not -1 <= key_len <= length - _HEAD.size:
        return None
    if zlib.crc32(memoryview(data)[pos + _FRAME.size : end]) != crc:
        return None
    return _Intact(pos, end, offset, timestamp_ms)


def _resync(data: bytes, bad_at: int, expected: int) -> _Intact | None:
    """The first intact record after bad bytes at bad_at, with an offset >= expected."""
    if bad_at + _FRAME.size <= len(data):
        # A flipped bit inside one record usually leaves its length intact: try right after it.
        length = _FRAME.unpack_from(data, bad_at)[0]
        hit = _parse_at(data, bad_at + _FRAME.size + length)
        if hit is not None and hit.offset >= expected and length >= _HEAD.size:
            return hit
    # Records are in offset order, so the lowest offset found intact is also the earliest.
    for offset in range(expected, expected + _RESYNC_OFFSETS):
        needle = struct.pack(">q", offset)
        index = data.find(needle, bad_at + 1 + _FRAME.size)
        for _ in range(_FALSE_HITS):
            if index == -1:
                break
            hit = _parse_at(data, index - _FRAME.size)
            if hit is not None and hit.offset == offset:
                return hit
            index = data.find(needle, index + 1)
    return None


def _whole_frames(data: bytes, start: int) -> int:
    """How many complete frames, by their length fields, run exactly from start to the end;
    0 if they do not (then the bytes are a torn write, not damaged records)."""
    pos, count, total = start, 0, len(data)
    while pos < total:
        if pos + _FRAME.size + _HEAD.size > total:
            return 0
        length = _FRAME.unpack_from(data, pos)[0]
        if length < _HEAD.size or length > MAX_RECORD_BYTES + _HEAD.size:
            return 0
        pos += _FRAME.size + length
        count += 1
    return count if pos == total else 0


def _scan(data: bytes, base_offset: int, *, newest: bool, next_base: int | None
          ) -> tuple[list[_Intact], list[tuple[int, int, int, int]], int | None]:
    """Intact records; gaps as (bad_at, bad_end, first lost offset, end lost offset); and the
    byte where a torn tail starts (newest segment only), or None."""
    records: list[_Intact] = []
    gaps: list[tuple[int, int, int, int]] = []
    pos, expected, total = 0, base_offset, len(data)
    while pos < total:
        hit = _parse_at(data, pos)
        if hit is not None and hit.offset == expected:
            records.append(hit)
            pos, expected = hit.end, expected + 1
            continue
        again = _resync(data, pos, expected)
        if again is not None:
            gaps.append((pos, again.pos, expected, again.offset))
            pos, expected = again.pos, again.offset
            continue
        # Nothing intact follows: the damage runs to the end of the segment.
        if newest:
            frames = _whole_frames(data, pos)
            if frames == 0:
                return records, gaps, pos  # a torn write
            gaps.append((pos, total, expected, expected + frames))
        else:
            lost_end = next_base if next_base is not None and next_base >= expected else expected
            gaps.append((pos, total, expected, lost_end))
        break
    return records, gaps, None


def _rewrite_sync(path: Path, data: bytes, records: list[_Intact], gaps: list[tuple[int, int, int, int]]) -> None:
    """The segment again with a placeholder per lost offset, replaced atomically."""
    pieces: list[bytes] = []
    gap_at = {gap[0]: gap for gap in gaps}
    pos, last_ts = 0, None
    by_pos = {r.pos: r for r in records}
    while pos < len(data):
        record = by_pos.get(pos)
        if record is not None:
            pieces.append(data[record.pos:record.end])
            last_ts, pos = record.timestamp_ms, record.end
            continue
        bad_at, bad_end, first, end = gap_at[pos]
        following = by_pos.get(bad_end)
        # A placeholder takes its neighbour's time, so the time index stays in order.
        ts = last_ts if last_ts is not None else (following.timestamp_ms if following else int(time.time() * 1000))
        pieces.extend(encode_record(offset, ts, None, b"", lost=True) for offset in range(first, end))
        pos = bad_end
    tmp = path.with_name(path.name + ".repair")
    with os.fdopen(create_private(tmp, os.O_WRONLY | os.O_TRUNC), "wb") as handle:
        handle.write(b"".join(pieces))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir_sync(path.parent)


def _keep_copy_sync(log_dir: Path, path: Path, topic: str, partition: int) -> Path:
    target_dir = ensure_private_dir(log_dir / DAMAGE_DIR)
    copy = target_dir / f"{int(time.time() * 1000)}-{topic}-{partition}-{path.name}"
    shutil.copy2(path, copy)
    with open(copy, "rb+") as handle:
        os.fsync(handle.fileno())
    fsync_dir_sync(target_dir)
    return copy


def write_report_sync(log_dir: Path, damage: Damage) -> None:
    target_dir = ensure_private_dir(log_dir / DAMAGE_DIR)
    name = f"{int(time.time() * 1000)}-{damage.topic}-{damage.partition}-{damage.kind}-{damage.at_byte}.json"
    tmp = target_dir / (name + ".tmp")
    write_private(tmp, json.dumps({**asdict(damage), "summary": damage.describe()}, indent=1).encode())
    os.replace(tmp, target_dir / name)


def read_reports_sync(log_dir: Path) -> list[str]:
    """Summaries of the damage reports an operator has not cleared yet."""
    out = []
    for path in sorted((log_dir / DAMAGE_DIR).glob("*.json")):
        try:
            out.append(json.loads(path.read_text())["summary"])
        except (OSError, ValueError, KeyError):
            out.append(f"unreadable damage report {path}")
    return out


def open_partition_sync(directory: Path, *, log_dir: Path, topic: str, partition: int
                        ) -> tuple[PartitionFiles, list[Damage]]:
    """Open (creating if needed), validate, repair and index one partition."""
    ensure_private_dir(directory)
    for leftover in directory.glob("*.deleted"):  # retention had dropped it; the unlink did not happen
        leftover.unlink()
    paths = sorted(directory.glob(f"*{_SUFFIX}"))
    if not paths:
        paths = [_create_segment_file(directory, 0)]
    segments: list[Segment] = []
    max_timestamps = array("q")
    damages: list[Damage] = []
    expected = int(paths[0].stem)
    for i, path in enumerate(paths):
        if int(path.stem) != expected:
            raise BackendError(f"log segment {path} starts at {path.stem}, expected offset {expected}")
        newest = i == len(paths) - 1
        data = path.read_bytes()
        records, gaps, torn_at = _scan(data, expected, newest=newest,
                                       next_base=None if newest else int(paths[i + 1].stem))
        if gaps:
            copy = _keep_copy_sync(log_dir, path, topic, partition)
            for bad_at, bad_end, first, end in gaps:
                before = [r for r in records if r.end <= bad_at]
                after = [r for r in records if r.pos >= bad_end]
                damages.append(Damage(
                    topic, partition, str(path), "corrupt", bad_at, bad_end - bad_at, [first, end],
                    before[-1].timestamp_ms if before else None, after[0].timestamp_ms if after else None, str(copy),
                ))
            if torn_at is not None:
                data = data[:torn_at]
            _rewrite_sync(path, data, records, gaps)
            data = path.read_bytes()
            records, gaps, torn_at = _scan(data, expected, newest=newest, next_base=None)
            if gaps or torn_at is not None:
                raise BackendError(f"log segment {path} still fails validation after repair; see {copy}")
        elif torn_at is not None:
            damages.append(Damage(topic, partition, str(path), "torn_tail", torn_at, len(data) - torn_at))
            os.truncate(path, torn_at)
        segment = Segment(expected, path, os.open(path, os.O_RDONLY))
        running = max_timestamps[-1] if max_timestamps else -(1 << 63)
        for record in records:
            segment.positions.append(record.pos)
            running = max(running, record.timestamp_ms)
            max_timestamps.append(running)
        segment.size = records[-1].end if records else 0
        segments.append(segment)
        expected = segment.next_offset
    write_fd = os.open(segments[-1].path, os.O_WRONLY | os.O_APPEND)
    return PartitionFiles(directory, segments, max_timestamps, write_fd), damages
