"""The file log's in-memory tail: consumers read the newest records from memory, older ones
from the segment files, and the two join without a gap or a repeat."""

from __future__ import annotations

import services.backends.embedded._logfiles as logfiles
from services.backends.embedded.filelog import FileLog
from services.backends.log import TopicPartition


async def test_reads_cross_from_files_to_the_tail_without_gaps(tmp_path, monkeypatch):
    monkeypatch.setattr(logfiles, "TAIL_RECORDS", 50)
    log = FileLog(tmp_path, fsync=False)
    await log.start()
    await log.create_topic("t", partitions=1)
    await log.produce_batch("t", [(b"k", f"v{i}".encode()) for i in range(120)])  # 70 only in files
    for i in range(120, 130):
        await log.produce("t", f"v{i}".encode(), key=b"k")
    files = log._topics["t"][0]
    assert files.tail[0][0] == 80 and files.tail[-1][0] == 129
    consumer = log.consumer("g", ["t"])
    await consumer.start()
    seen: list[tuple[int, bytes]] = []
    while len(seen) < 130:
        batch = await consumer.getmany(timeout_ms=1000, max_records=33)
        seen += [(r.offset, r.value) for r in batch.get(TopicPartition("t", 0), [])]
    assert seen == [(i, f"v{i}".encode()) for i in range(130)]
    await consumer.seek(TopicPartition("t", 0), 85)  # a seek into the tail
    again = await consumer.getmany(timeout_ms=1000, max_records=5)
    assert [r.offset for r in again[TopicPartition("t", 0)]] == [85, 86, 87, 88, 89]
    await consumer.stop()
    await log.close()
