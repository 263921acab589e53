"""The pieces of FileLog's group commit that are not the writer task itself: what a produce
waits on (`Sink`), what waits in the queue (`Pending`), and the blocking appends and
fdatasyncs the writer runs in its I/O pool."""

from __future__ import annotations

import asyncio
import os

from services.common.errors import InvalidInput

from ._logfiles import MAX_RECORD_BYTES, PartitionFiles, encode_record

__all__ = ["Sink", "Pending", "check_record", "append_all_sync", "sync_sync", "fail_pending"]


class Sink:
    """Collects the offsets of one produce/produce_batch call: one future per call rather
    than per record keeps big batches cheap."""

    __slots__ = ("future", "offsets", "missing")

    def __init__(self, count: int) -> None:
        self.future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self.offsets = [0] * count
        self.missing = count

    def resolve(self, index: int, offset: int) -> None:
        self.offsets[index] = offset
        self.missing -= 1
        if self.missing == 0 and not self.future.done():  # done: the caller was cancelled
            self.future.set_result(self.offsets)

    def fail(self, error: Exception) -> None:
        if not self.future.done():
            self.future.set_exception(error)


# (partition files, key, value, timestamp_ms, sink, index in the sink) waiting for the writer task
Pending = tuple[PartitionFiles, "bytes | None", bytes, int, Sink, int]


def check_record(key: bytes | None, value: bytes) -> None:
    if not isinstance(value, (bytes, bytearray)) or (key is not None and not isinstance(key, (bytes, bytearray))):
        raise InvalidInput("log keys and values are bytes")
    if len(value) + len(key or b"") > MAX_RECORD_BYTES:
        raise InvalidInput(f"record larger than {MAX_RECORD_BYTES} bytes")


def append_all_sync(work: list) -> list:
    """Append each partition's records; per partition (file positions, new size) or the OSError."""
    results: list = []
    for files, items, first_offset, size in work:
        chunks, positions, position = [], [], size
        for i, item in enumerate(items):
            record = encode_record(first_offset + i, item[3], item[1], item[2])
            chunks.append(record)
            positions.append(position)
            position += len(record)
        try:
            files.write_sync(b"".join(chunks))
            results.append((positions, position))
        except OSError as exc:
            results.append(exc)
    return results


def sync_sync(files: PartitionFiles, size_before: int) -> None:
    try:
        os.fdatasync(files.write_fd)  # the file size is metadata fdatasync does flush
    except OSError:
        # Unknown what reached the disk: cut it so the index and the file agree.
        try:
            os.ftruncate(files.write_fd, size_before)
        except OSError:
            pass
        raise


def fail_pending(items: list[Pending], error: Exception) -> None:
    for item in items:
        item[4].fail(error)
