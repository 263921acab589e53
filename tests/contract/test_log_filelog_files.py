"""FileLog only: its files and directory in normal life: segments roll and reopen, retention
deletes whole old segments, one FileLog per directory, bad URLs and topic names refused."""

from __future__ import annotations

import os

import pytest

from services.backends.log import TopicPartition
from services.common.errors import FlareError, InvalidInput
from tests.contract.log_reads import drain, file_log


async def test_filelog_retention_deletes_old_segments_and_consumers_resume_at_the_start(tmp_path):
    from services.backends.embedded.filelog import FileLog

    log = FileLog(tmp_path, segment_bytes=300, retention_check_s=3600)
    await log.start()
    await log.create_topic("ret", partitions=1, retention_ms=60_000)
    old = 1_000  # 1970: far past any retention
    for i in range(40):
        await log.produce("ret", f"old-{i:03d}".encode(), timestamp_ms=old + i)
    for i in range(5):
        await log.produce("ret", f"new-{i}".encode())
    files = log._topics["ret"][0]
    index_before = len(files.max_timestamps)
    assert await log.enforce_retention() > 0
    start = (await log.beginning_offsets("ret"))[0]
    assert 0 < start <= 40 and len(files.max_timestamps) == index_before - start
    assert len(list((tmp_path / "topics" / "ret" / "0").glob("*.log"))) == len(files.segments)
    consumer = log.consumer("g", ["ret"])  # never committed: starts at the new beginning
    await consumer.start()
    got = await drain(consumer, 45 - start)
    assert [r.offset for r in got] == list(range(start, 45))
    assert [r.value for r in got][-5:] == [f"new-{i}".encode() for i in range(5)]
    await consumer.stop()
    await log.enforce_retention()  # unlinks what the first round retired
    await log.close()
    reopened = FileLog(tmp_path, segment_bytes=300)
    await reopened.start()
    assert (await reopened.beginning_offsets("ret"))[0] == start
    assert not list((tmp_path / "topics" / "ret" / "0").glob("*.deleted"))
    await reopened.close()


async def test_filelog_segments_roll_and_reopen(tmp_path):
    from services.backends.embedded.filelog import FileLog

    log = FileLog(tmp_path, segment_bytes=200)
    await log.start()
    await log.create_topic("roll", partitions=1)
    for i in range(30):
        await log.produce("roll", f"value-{i:03d}".encode(), timestamp_ms=1000 * i)
    await log.close()
    assert len(list((tmp_path / "topics" / "roll" / "0").glob("*.log"))) > 3
    reopened = FileLog(tmp_path, segment_bytes=200)
    await reopened.start()
    consumer = reopened.consumer("g", ["roll"])
    await consumer.start()
    got = await drain(consumer, 30)
    assert [r.value for r in got] == [f"value-{i:03d}".encode() for i in range(30)]
    tp = TopicPartition("roll", 0)
    assert await consumer.seek_to_timestamp(tp, 17_500) == 18
    assert [r.offset for r in await drain(consumer, 12)] == list(range(18, 30))
    await consumer.stop()
    await reopened.close()


async def test_filelog_directory_lock_and_idempotent_lifecycle(tmp_path):
    log = file_log(tmp_path)
    await log.start()
    await log.start()
    other = file_log(tmp_path)
    with pytest.raises(FlareError):
        await other.start()
    await log.close()
    await log.close()
    await other.start()
    await other.close()


async def test_filelog_rejects_bad_urls_and_names(tmp_path):
    from services.backends.embedded.filelog import FileLog

    for url in ("file://relative/dir", "kafka://x", f"file://{tmp_path}?fsync=sometimes"):
        with pytest.raises(InvalidInput):
            FileLog.from_url(url)
    log = file_log(tmp_path)
    await log.start()
    with pytest.raises(InvalidInput):
        await log.create_topic("../escape", partitions=1)
    await log.close()
    assert not (tmp_path.parent / "escape").exists()
    assert os.path.isdir(tmp_path / "topics")


async def test_filelog_times_each_append_job_in_a_histogram(tmp_path):
    from prometheus_client import REGISTRY

    from services.backends.embedded.filelog import FileLog

    def jobs() -> float:
        return REGISTRY.get_sample_value("flare_log_write_seconds_count") or 0.0

    log = FileLog(tmp_path)
    await log.start()
    try:
        await log.create_topic("timed", partitions=1)
        before = jobs()
        for i in range(3):  # one at a time: each its own job
            await log.produce("timed", f"r{i}".encode())
        assert jobs() - before >= 3
        assert (REGISTRY.get_sample_value("flare_log_write_seconds_sum") or 0.0) > 0
    finally:
        await log.close()
