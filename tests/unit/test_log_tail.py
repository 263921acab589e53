"""FileLog's in-memory tail (services/backends/embedded/_logfiles.PartitionFiles.from_tail):
the records from an offset, read from whichever end is nearer, always the same slice."""

from __future__ import annotations

from array import array
from collections import deque
from pathlib import Path

import pytest

from services.backends.embedded._logfiles import PartitionFiles


@pytest.mark.parametrize("first", [0, 1000])
def test_from_tail_is_the_slice_from_the_offset_whichever_end_is_nearer(first):
    files = PartitionFiles(Path("."), [], array("q"), -1)
    records = [(first + i, i, b"k", f"v{i}".encode()) for i in range(37)]
    files.tail = deque(records)
    for offset in range(first, first + 37):
        for max_records in (1, 2, 5, 36, 37, 100):
            start = offset - first
            assert files.from_tail(offset, max_records) == records[start:start + max_records], (offset, max_records)
    assert files.from_tail(first - 1, 10) is None  # before the tail: read the file
    assert files.from_tail(first + 37, 10) is None  # past the newest record
    files.tail = deque()
    assert files.from_tail(first, 10) is None
