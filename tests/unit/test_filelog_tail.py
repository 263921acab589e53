"""The file log's in-memory tail: consumers read the newest records from memory, older ones
from the segment files, and the two join without a gap or a repeat."""

from __future__ import annotations

from services.backends.embedded.filelog import FileLog
from services.common.bounds import ENTRY_OVERHEAD
from services.backends.log import TopicPartition


async def test_reads_cross_from_files_to_the_tail_without_gaps(tmp_path):
    record_cost = len(b"k") + len(b"v100") + ENTRY_OVERHEAD
    log = FileLog(tmp_path, fsync=False, tail_bytes=50 * record_cost)  # 50 records of 4-byte values
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


async def test_the_tail_stays_under_its_byte_budget_across_partitions(tmp_path):
    log = FileLog(tmp_path, fsync=False, tail_bytes=64 * 1024)
    await log.start()
    await log.create_topic("a", partitions=3)
    await log.create_topic("b", partitions=1)
    for _ in range(20):
        await log.produce_batch("a", [(f"k{i}".encode(), b"x" * 2048) for i in range(30)])
        await log.produce_batch("b", [(None, b"y" * 4096) for _ in range(10)])
        assert log.tail_budget.used <= 64 * 1024
    assert log.tail_budget.evictions > 0
    parts = [f for t in ("a", "b") for f in log._topics[t]]
    assert sum(f.tail_bytes for f in parts) == log.tail_budget.used
    assert all(f.tail for f in parts)  # every partition keeps its share, none starves
    await log.close()
    assert log.tail_budget.used == 0
