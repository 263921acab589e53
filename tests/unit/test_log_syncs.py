"""FileLog's write policy (services/backends/embedded/_logwriter): fdatasyncs in a row while
they are fast, in parallel on the pool while they are slow, each failure at its index
(Syncs); the whole job on the loop while it is quicker than a thread hop (JobPlace)."""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from services.backends.embedded._logwriter import JobPlace, Syncs
from services.backends.embedded.filelog import FileLog


class CountingPool(ThreadPoolExecutor):
    """A real pool that counts the map calls it was given."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.maps = 0

    def map(self, *args, **kwargs):  # type: ignore[override]
        self.maps += 1
        return super().map(*args, **kwargs)


@pytest.fixture
def files(tmp_path):
    opened = []
    for i in range(3):
        fd = os.open(tmp_path / f"p{i}", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.write(fd, b"x" * 100)
        opened.append(SimpleNamespace(write_fd=fd))
    yield opened
    for entry in opened:
        try:
            os.close(entry.write_fd)
        except OSError:
            pass


def test_fast_syncs_run_in_a_row_and_slow_ones_in_parallel(files):
    pool = CountingPool()
    try:
        written = [(i, f, 100) for i, f in enumerate(files)]
        fast = Syncs(pool, hop_s=10.0)  # any real fdatasync is faster than 10 s
        assert fast.run(written) == [(0, None), (1, None), (2, None)]
        assert pool.maps == 0
        assert fast.mean_s > 0  # each sync was timed

        slow = Syncs(pool, hop_s=1e-9)  # any real fdatasync is slower
        slow.run(written)  # the first batch: nothing measured yet, so in a row
        assert pool.maps == 0
        assert sorted(slow.run(written)) == [(0, None), (1, None), (2, None)]
        assert pool.maps == 1  # measured slower than a hop: handed to the pool
    finally:
        pool.shutdown()


@pytest.mark.parametrize("hop_s", [10.0, 0.0])
def test_a_failed_sync_is_reported_at_its_index_either_way(files, hop_s):
    pool = CountingPool()
    try:
        syncs = Syncs(pool, hop_s=hop_s)
        syncs.mean_s = 1e-3  # parallel when hop_s is 0
        os.close(files[1].write_fd)  # fdatasync on it fails with EBADF
        outcomes = dict(syncs.run([(i, f, 100) for i, f in enumerate(files)]))
        assert outcomes[0] is None and outcomes[2] is None
        assert isinstance(outcomes[1], OSError)
        assert pool.maps == (1 if hop_s == 0.0 else 0)
    finally:
        pool.shutdown()


def _job(delay_s: float):
    """One partition's write work whose write takes `delay_s` (a real sleep)."""
    written = []

    def write_sync(data: bytes) -> None:
        time.sleep(delay_s)
        written.append(data)

    files = SimpleNamespace(write_sync=write_sync)
    return [(files, [(files, b"k", b"value", 1)], 0, 0)], written


def test_job_place_starts_on_the_thread_goes_inline_while_quick_and_back_after_a_slow_job():
    place = JobPlace("test", hop_s=0.05)
    assert not place.choose()  # nothing measured yet: the first job runs on the thread
    work, written = _job(0.0)
    place.timed(work, None, inline=False)
    assert written and place.choose()  # measured quicker than the hop
    for _ in range(4):
        slow, _ = _job(0.12)
        assert place.timed(slow, None, inline=True)[0][1] > 0  # the result is the job's own (positions, size)
    assert not place.inline  # a run of slow jobs (0.12 s against a 0.05 s hop) moves it back


def test_filelog_writes_inline_while_jobs_are_quick_and_reads_back_everything(tmp_path):
    async def run() -> tuple[int, list[bytes]]:
        log = FileLog(tmp_path / "log", fsync=False)  # no fdatasync: a job is one page-cache write
        await log.start()
        try:
            await log.create_topic("t", partitions=1)
            for i in range(20):
                await log.produce("t", f"v{i}".encode(), key=b"k")
            consumer = log.consumer("g", ["t"])
            await consumer.start()
            got: list[bytes] = []
            try:
                while len(got) < 20:
                    for records in (await consumer.getmany(timeout_ms=200, max_records=100)).values():
                        got += [r.value for r in records]
            finally:
                await consumer.stop()
            return log._place.inline_jobs, got
        finally:
            await log.close()

    inline_jobs, got = asyncio.run(run())
    assert got == [f"v{i}".encode() for i in range(20)]
    assert inline_jobs > 0  # quick jobs ran on the loop
