"""FileLog's fdatasync policy (services/backends/embedded/_logwriter.Syncs): in a row while
syncs are fast, in parallel on the pool while they are slow, each failure at its index."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from services.backends.embedded._logwriter import Syncs


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
