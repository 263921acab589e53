"""Committed offsets of one consumer group of the file log: two slots rewritten in place.

The store commits after every batch it persists, and waits for the commit before it
delivers. Writing a temp file and renaming it over the old one looked free (no fsync, the
page cache), but on ext4 a rename that replaces a file flushes the new file's data first
(auto_da_alloc), and behind the log's own fdatasyncs that stopped the event loop for
40-130 ms a few times a second (found with FLARE_STALL_REPORT_MS, services/common/stalls.py).

So each group has two slot files, `<group>.json.a` and `.b`, each opened once and
overwritten at offset 0 with one pwrite: a header (magic, sequence number, payload length,
CRC-32) and the JSON payload. Writes alternate between the slots, so a write torn by a
crash can only damage the slot it was writing, and the other still holds the commit before
it; the reader takes the valid slot with the higher sequence. Bytes past the payload (a
longer earlier write) are ignored thanks to the length. Not fsynced, as before: a commit
lost to a power cut only makes the group re-read records it already processed, which a
consumer must tolerate anyway (the store is idempotent on msg_id).

A group written by an older Flare has only `<group>.json` (the whole JSON, written by
rename); it is read when no slot is valid, and the next commit moves the group to slots.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

from services.backends.log import TopicPartition
from services.common.paths import create_private

from ._logfiles import fsync_dir_sync

__all__ = ["OffsetsFile", "load_offsets_sync", "rewrite_offsets_sync", "group_paths_sync", "encode_offsets"]

_HEADER = struct.Struct(">4sQII")  # magic, sequence, payload length, CRC-32 of the payload
_MAGIC = b"FLO1"
_SUFFIXES = (".a", ".b")


def _slots(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + _SUFFIXES[0]), path.with_name(path.name + _SUFFIXES[1])


def encode_offsets(committed: dict[TopicPartition, int]) -> bytes:
    snapshot: dict[str, dict[str, int]] = {}
    for tp, offset in sorted(committed.items()):
        snapshot.setdefault(tp.topic, {})[str(tp.partition)] = offset
    return json.dumps(snapshot).encode()


def _decode(payload: bytes) -> dict[TopicPartition, int]:
    raw = json.loads(payload)
    return {TopicPartition(t, int(p)): int(o) for t, parts in raw.items() for p, o in parts.items()}


def _read_slot(slot: Path) -> tuple[int, bytes] | None:
    """(sequence, payload) of a valid slot, None if it is missing, short or damaged."""
    try:
        data = slot.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < _HEADER.size:
        return None
    magic, sequence, length, crc = _HEADER.unpack_from(data)
    payload = data[_HEADER.size:_HEADER.size + length]
    if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
        return None
    return sequence, payload


def load_offsets_sync(path: Path) -> tuple[dict[TopicPartition, int], int]:
    """The group's committed offsets and the sequence of the slot they came from (0 for
    the legacy file or none). Raises ValueError for a legacy file that is not JSON."""
    valid = [entry for entry in (_read_slot(slot) for slot in _slots(path)) if entry is not None]
    if valid:
        sequence, payload = max(valid)
        return _decode(payload), sequence
    try:
        return _decode(path.read_bytes()), 0
    except FileNotFoundError:
        return {}, 0


def rewrite_offsets_sync(path: Path, committed: dict[TopicPartition, int], sequence: int) -> None:
    """Outside a running log (start-up repair): one durable write of a group's offsets;
    `sequence` is what load_offsets_sync returned with them."""
    writer = OffsetsFile(path, sequence)
    try:
        writer.write_sync(encode_offsets(committed), fsync=True)
    finally:
        writer.close_sync()
    fsync_dir_sync(path.parent)


def group_paths_sync(groups_dir: Path) -> list[Path]:
    """The base path (`<group>.json`) of every group with offsets in `groups_dir`."""
    bases = set()
    for found in groups_dir.glob("*.json*"):
        name = found.name
        for suffix in _SUFFIXES:
            if name.endswith(".json" + suffix):
                name = name[: -len(suffix)]
        if name.endswith(".json"):
            bases.add(found.with_name(name))
    return sorted(bases)


class OffsetsFile:
    """The writer of one group's slots; `sequence` is what load_offsets_sync returned."""

    def __init__(self, path: Path, sequence: int) -> None:
        self.path = path
        self._sequence = sequence
        self._fds: list[int | None] = [None, None]

    def write_sync(self, payload: bytes, *, fsync: bool = False) -> None:
        sequence = self._sequence + 1
        index = sequence % 2  # never the slot holding the newest valid commit
        fd = self._fds[index]
        if fd is None:
            fd = self._fds[index] = create_private(_slots(self.path)[index], os.O_RDWR)
        record = _HEADER.pack(_MAGIC, sequence, len(payload), zlib.crc32(payload)) + payload
        written = os.pwrite(fd, record, 0)
        if written != len(record):
            raise OSError(f"short write of {self.path.name} offsets ({written} of {len(record)} bytes)")
        if fsync:
            os.fdatasync(fd)
        self._sequence = sequence

    def close_sync(self) -> None:
        for index, fd in enumerate(self._fds):
            if fd is not None:
                os.close(fd)
                self._fds[index] = None
