"""FileLog only: what a crash or a damaged disk leaves behind is repaired at start, reported,
and never costs a record after the damage or an offset reused (docs/operations.md)."""

from __future__ import annotations

import pytest

from services.backends.log import TopicPartition
from tests.contract.log_reads import drain, file_log


@pytest.mark.parametrize("garbage", [
    b"\x00\x00\x00\x40\x12\x34",  # half a frame header
    b"\x00\x00\x00\x20" + b"\x00" * 4 + b"partial body",  # a header promising more than exists
    None,  # the first half of a real record
    b"\xff" * 64,  # noise
])
async def test_filelog_torn_tail_is_truncated_on_open(tmp_path, garbage):
    from services.backends.embedded._logfiles import encode_record

    log = file_log(tmp_path)
    await log.start()
    await log.create_topic("torn", partitions=1)
    for i in range(5):
        await log.produce("torn", f"v{i}".encode(), key=b"k")
    await log.close()
    segment = next((tmp_path / "topics" / "torn" / "0").glob("*.log"))
    intact = segment.stat().st_size
    if garbage is None:
        garbage = encode_record(5, 1, b"k", b"never finished")[:-5]
    with open(segment, "ab") as handle:
        handle.write(garbage)

    reopened = file_log(tmp_path)
    await reopened.start()
    assert reopened.truncated_bytes == len(garbage)
    assert segment.stat().st_size == intact
    assert await reopened.end_offsets("torn") == {0: 5}
    meta = await reopened.produce("torn", b"v5", key=b"k")
    assert meta.offset == 5
    consumer = reopened.consumer("g", ["torn"])
    await consumer.start()
    got = await drain(consumer, 6)
    assert [r.value for r in got] == [f"v{i}".encode() for i in range(6)]
    await consumer.stop()
    await reopened.close()


async def _filelog_with(tmp_path, topic: str, values: list[bytes], **kwargs):
    from services.backends.embedded.filelog import FileLog

    log = FileLog(tmp_path, **kwargs)
    await log.start()
    await log.create_topic(topic, partitions=1)
    for value in values:
        await log.produce(topic, value)
    return log


def _flip(path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


async def test_filelog_corrupt_last_record_is_reported_and_its_offset_never_reused(tmp_path):
    log = await _filelog_with(tmp_path, "crc", [f"value-{i}".encode() for i in range(3)])
    await log.close()
    segment = next((tmp_path / "topics" / "crc" / "0").glob("*.log"))
    _flip(segment, segment.stat().st_size - 1)  # a bit of the last record's value: a whole frame, bad crc
    reopened = file_log(tmp_path)
    await reopened.start()
    assert await reopened.end_offsets("crc") == {0: 3}  # offset 2 is a placeholder now
    assert [d.kind for d in reopened.damage] == ["corrupt"]
    assert reopened.damage[0].lost_offsets == [2, 3]
    assert any("lost offsets 2..2" in p for p in reopened.problems())
    assert (await reopened.produce("crc", b"after")).offset == 3
    consumer = reopened.consumer("g", ["crc"])
    await consumer.start()
    got = await drain(consumer, 3)
    assert [(r.offset, r.value) for r in got] == [(0, b"value-0"), (1, b"value-1"), (3, b"after")]
    await consumer.stop()
    await reopened.close()


async def test_filelog_mid_segment_corruption_keeps_the_records_after_it(tmp_path):
    values = [f"value-{i:02d}".encode() * 4 for i in range(20)]
    log = await _filelog_with(tmp_path, "mid", values)
    await log.close()
    segment = next((tmp_path / "topics" / "mid" / "0").glob("*.log"))
    record_bytes = segment.stat().st_size // 20
    _flip(segment, record_bytes * 7 + record_bytes // 2)  # inside record 7
    reopened = file_log(tmp_path)
    await reopened.start()
    assert reopened.truncated_bytes == 0
    (damage,) = reopened.damage
    assert damage.kind == "corrupt" and damage.lost_offsets == [7, 8]
    assert (tmp_path / "damage").is_dir() and any((tmp_path / "damage").glob("*.json"))
    assert await reopened.end_offsets("mid") == {0: 20}
    consumer = reopened.consumer("g", ["mid"])
    await consumer.start()
    got = await drain(consumer, 19)
    assert [r.value for r in got] == values[:7] + values[8:]
    await consumer.stop()
    await reopened.close()
    # Repaired on disk: the next start finds nothing new, but stays degraded until the
    # operator clears the report (docs/operations.md).
    again = file_log(tmp_path)
    await again.start()
    assert again.damage == [] and again.problems()
    await again.close()
    for report in (tmp_path / "damage").iterdir():
        report.unlink()
    cleared = file_log(tmp_path)
    await cleared.start()
    assert cleared.problems() == []
    await cleared.close()


async def test_filelog_damage_in_an_older_segment_no_longer_refuses_to_start(tmp_path):
    log = await _filelog_with(tmp_path, "old", [f"value-{i:03d}".encode() for i in range(30)], segment_bytes=200)
    await log.close()
    first = sorted((tmp_path / "topics" / "old" / "0").glob("*.log"))[0]
    _flip(first, first.stat().st_size - 3)  # the last record of the oldest segment
    reopened = file_log(tmp_path)
    await reopened.start()
    (damage,) = reopened.damage
    assert damage.kind == "corrupt" and damage.lost_offsets[1] - damage.lost_offsets[0] == 1
    consumer = reopened.consumer("g", ["old"])
    await consumer.start()
    got = await drain(consumer, 29)
    assert len(got) == 29 and len({r.offset for r in got}) == 29
    await consumer.stop()
    await reopened.close()


async def test_filelog_committed_offset_past_the_end_is_moved_back(tmp_path):
    log = await _filelog_with(tmp_path, "gone", [f"v{i}".encode() for i in range(5)])
    consumer = log.consumer("g", ["gone"])
    await consumer.start()
    await drain(consumer, 5)
    await consumer.commit({TopicPartition("gone", 0): 5})
    await consumer.stop()
    await log.close()
    segment = next((tmp_path / "topics" / "gone" / "0").glob("*.log"))
    with open(segment, "rb+") as handle:  # as if the last two records never reached the disk
        handle.truncate(segment.stat().st_size * 3 // 5 + 3)
    reopened = file_log(tmp_path)
    await reopened.start()
    kinds = sorted(d.kind for d in reopened.damage)
    assert kinds == ["committed_past_end", "torn_tail"]
    assert await reopened.committed_offsets("g", "gone") == {0: 3}
    assert any("resumes at 3" in p for p in reopened.problems())
    for i in range(3):
        await reopened.produce("gone", f"new{i}".encode())
    consumer = reopened.consumer("g", ["gone"])
    await consumer.start()
    got = await drain(consumer, 3)
    assert [r.value for r in got] == [b"new0", b"new1", b"new2"]  # none skipped
    await consumer.stop()
    await reopened.close()
