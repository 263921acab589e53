"""The pieces of FileLog's group commit that are not the writer task itself: what a produce
waits on (`Sink`), what waits in the queue (`Pending`), and the blocking job of appends and
fdatasyncs the writer runs in its I/O pool (`write_all_sync`)."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

from services.common.errors import InvalidInput

from ._logfiles import MAX_RECORD_BYTES, PartitionFiles, encode_record
from ._placement import Placement

__all__ = ["Sink", "Pending", "Syncs", "JobPlace", "check_record", "write_all_sync", "fail_pending"]


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


def _append_all_sync(work: list) -> list:
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


class Syncs:
    """How one write job's fdatasyncs run: one after another on the job's own thread while
    they are fast, in parallel on `pool` while they are slow.

    In parallel, concurrent fdatasyncs share an ext4 journal commit: five partitions took
    600 us instead of 1,030 us in a row on this VM's disk. But each one handed to the pool
    is a thread hop, ~100 us of CPU here (a wakeup across vCPUs), which is ten times a
    whole fdatasync on tmpfs or a device that acknowledges from a protected cache (10 us).
    So each sync is timed, and while the recent mean stays under `hop_s` they run in a row."""

    def __init__(self, pool: ThreadPoolExecutor, *, hop_s: float = 100e-6) -> None:
        self.pool = pool
        self.hop_s = hop_s
        self.mean_s = 0.0  # recent mean of one fdatasync (0: none yet, so in a row first)

    def run(self, written: list[tuple[int, PartitionFiles, int]]) -> list[tuple[int, OSError | None]]:
        if len(written) == 1 or self.mean_s < self.hop_s:
            return [self._one(entry) for entry in written]
        return list(self.pool.map(self._one, written))

    def _one(self, entry: tuple[int, PartitionFiles, int]) -> tuple[int, OSError | None]:
        index, files, size = entry
        started = time.perf_counter()
        try:
            _sync_sync(files, size)
        except OSError as exc:
            return index, exc
        finally:
            # Races between pool threads lose an update at worst: it is an estimate.
            self.mean_s = 0.8 * self.mean_s + 0.2 * (time.perf_counter() - started)
        return index, None


class JobPlace(Placement):
    """Where the writer runs a job (encode, one write per partition, the syncs): on the loop
    while jobs are quick, on its I/O thread while they are slow (_placement.py). On tmpfs, or
    a device that acknowledges fdatasync from a protected cache, a job takes 15-170 us
    (fast and slow VM phases), less than the hop; a disk that slows down moves the next jobs
    to the thread after a run of slow ones (three from twice `hop_s` up: samples are clipped
    there, so one slow job alone does not)."""

    __slots__ = ()

    def timed(self, work: list, syncs: Syncs | None, *, inline: bool) -> list:
        """write_all_sync, timed into the estimate (`inline`: called on the loop)."""
        started = time.perf_counter()
        try:
            return write_all_sync(work, syncs)
        finally:
            self.record(time.perf_counter() - started, inline=inline)


def write_all_sync(work: list, syncs: Syncs | None) -> list:
    """Append every partition's records, then (given `syncs`) fdatasync the partitions
    written; a partition whose write or sync failed gets its OSError."""
    results = _append_all_sync(work)
    if syncs is None:
        return results
    written = [(i, files, size) for i, ((files, _, _, size), result) in enumerate(zip(work, results))
               if not isinstance(result, BaseException)]
    for index, error in syncs.run(written):
        if error is not None:
            results[index] = error
    return results


def _sync_sync(files: PartitionFiles, size_before: int) -> None:
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
