"""Contract for the Log port (services/backends/log.py), run against every adapter.

Topics and groups carry a random suffix so the suite can share one real server.
The last section holds FileLog-only checks (torn tails, directory lock).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.backends.log import Log, LogConsumer, LogRecord, TopicPartition
from services.common.errors import FlareError, InvalidInput, NotFound


async def _drain(consumer: LogConsumer, want: int, *, timeout: float = 15.0) -> list[LogRecord]:
    """Read until `want` records arrived (fails after timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    out: list[LogRecord] = []
    while len(out) < want:
        assert loop.time() < deadline, f"only {len(out)} of {want} records arrived"
        batch = await consumer.getmany(timeout_ms=200)
        for records in batch.values():
            out.extend(records)
    return out


async def _settle(consumers: list[LogConsumer], done: Callable[[], bool], *, timeout: float = 30.0) -> dict:
    """Poll every member until `done()`; return what they read meanwhile (rebalances need polls)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    read: dict[TopicPartition, list[LogRecord]] = {}
    while not done():
        assert loop.time() < deadline, "group never settled"
        batches = await asyncio.gather(*(c.getmany(timeout_ms=100) for c in consumers))
        for batch in batches:
            for tp, records in batch.items():
                read.setdefault(tp, []).extend(records)
    return read


async def test_is_a_log(log):
    assert isinstance(log, Log)


async def test_topic_retention_is_accepted_checked_and_replaceable(log, unique):
    topic = f"ret-{unique}"
    await log.create_topic(topic, partitions=2, retention_ms=3_600_000, retention_bytes=64 * 1024 * 1024)
    await log.create_topic(topic, partitions=2, retention_ms=3_600_000, retention_bytes=64 * 1024 * 1024)
    await log.create_topic(topic, partitions=2, retention_ms=60_000)  # replaces it
    await log.create_topic(topic, partitions=2)  # keeps it
    for bad in ({"retention_ms": 0}, {"retention_bytes": -5}, {"retention_ms": "1h"}):
        with pytest.raises(InvalidInput):
            await log.create_topic(topic, partitions=2, **bad)
    meta = await log.produce(topic, b"kept", key=b"k")
    assert meta.offset == 0


async def test_topics(log, unique):
    topic = f"t-{unique}"
    with pytest.raises(NotFound):
        await log.partitions_for(topic)
    await log.create_topic(topic, partitions=3)
    await log.create_topic(topic, partitions=3)  # idempotent
    await log.create_topic(topic, partitions=1)  # never shrinks
    assert await log.partitions_for(topic) == 3
    assert await log.end_offsets(topic) == {0: 0, 1: 0, 2: 0}
    assert await log.beginning_offsets(topic) == {0: 0, 1: 0, 2: 0}


async def test_produce_offsets_and_key_partitioning(log, unique):
    topic = f"p-{unique}"
    await log.create_topic(topic, partitions=4)
    metas = [await log.produce(topic, f"v{i}".encode(), key=b"conv-1") for i in range(5)]
    assert len({m.partition for m in metas}) == 1  # same key, same partition
    assert [m.offset for m in metas] == list(range(metas[0].offset, metas[0].offset + 5))
    assert all(m.topic == topic and m.timestamp_ms > 0 for m in metas)
    explicit = await log.produce(topic, b"x", partition=2, timestamp_ms=1234)
    assert (explicit.partition, explicit.timestamp_ms) == (2, 1234)
    ends = await log.end_offsets(topic)
    assert sum(ends.values()) == 6
    assert ends[metas[0].partition] >= 5


async def test_produce_batch_order(log, unique):
    topic = f"b-{unique}"
    await log.create_topic(topic, partitions=2)
    records = [(f"k{i % 3}".encode(), f"v{i}".encode()) for i in range(30)]
    metas = await log.produce_batch(topic, records)
    assert len(metas) == 30
    per_key: dict[bytes, list] = {}
    for (key, _), meta in zip(records, metas):
        per_key.setdefault(key, []).append(meta)
    for key, ms in per_key.items():
        assert len({m.partition for m in ms}) == 1
        assert [m.offset for m in ms] == sorted(m.offset for m in ms)
    consumer = log.consumer(f"g-{unique}", [topic])
    await consumer.start()
    got = await _drain(consumer, 30)
    by_key: dict[bytes | None, list[bytes]] = {}
    for record in sorted(got, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(record.value)
    for key in per_key:
        assert by_key[key] == [v for k, v in records if k == key]
    await consumer.stop()


async def test_concurrent_produce_keeps_per_key_order(log, unique):
    topic = f"c-{unique}"
    await log.create_topic(topic, partitions=3)
    metas = await asyncio.gather(*(log.produce(topic, str(i).encode(), key=f"k{i % 5}".encode()) for i in range(200)))
    consumer = log.consumer(f"g-{unique}", [topic])
    await consumer.start()
    got = await _drain(consumer, 200)
    assert sorted((r.partition, r.offset) for r in got) == sorted((m.partition, m.offset) for m in metas)
    for key in {r.key for r in got}:
        values = [int(r.value) for r in sorted(got, key=lambda r: r.offset) if r.key == key]
        assert values == sorted(values)  # gather starts produces in index order
    await consumer.stop()


async def test_consume_fields_and_order(log, unique):
    topic = f"f-{unique}"
    await log.create_topic(topic, partitions=1)
    for i in range(10):
        await log.produce(topic, f"v{i}".encode(), key=None if i % 2 else b"k", timestamp_ms=1000 + i)
    consumer = log.consumer(f"g-{unique}", [topic])
    await consumer.start()
    got = await _drain(consumer, 10)
    assert [r.offset for r in got] == list(range(10))
    assert [r.value for r in got] == [f"v{i}".encode() for i in range(10)]
    assert [r.key for r in got] == [None if i % 2 else b"k" for i in range(10)]
    assert [r.timestamp_ms for r in got] == [1000 + i for i in range(10)]
    assert all(r.tp == TopicPartition(topic, 0) for r in got)
    assert await consumer.getmany(timeout_ms=100) == {}
    await consumer.stop()


async def test_getmany_max_records(log, unique):
    topic = f"m-{unique}"
    await log.create_topic(topic, partitions=1)
    await log.produce_batch(topic, [(None, b"x")] * 25)
    consumer = log.consumer(f"g-{unique}", [topic])
    await consumer.start()
    await _settle([consumer], lambda: bool(consumer.assignment()))
    await consumer.seek(TopicPartition(topic, 0), 0)
    batch = await consumer.getmany(timeout_ms=5000, max_records=10)
    assert 0 < sum(len(r) for r in batch.values()) <= 10
    await consumer.stop()


async def test_getmany_wakes_on_append(log, unique):
    topic = f"w-{unique}"
    await log.create_topic(topic, partitions=2)
    consumer = log.consumer(f"g-{unique}", [topic])
    await consumer.start()
    await _settle([consumer], lambda: len(consumer.assignment()) == 2)
    loop = asyncio.get_running_loop()
    waiting = asyncio.create_task(consumer.getmany(timeout_ms=60_000))
    await asyncio.sleep(0.2)
    started = loop.time()
    await log.produce(topic, b"wake", key=b"any")
    batch = await asyncio.wait_for(waiting, 30)
    # Far below the 60 s timeout: the append woke the wait instead of the timer.
    assert loop.time() - started < 30
    assert [r.value for rs in batch.values() for r in rs] == [b"wake"]
    await consumer.stop()


async def test_commit_and_resume_after_reopen(log_opener, unique):
    topic, group = f"r-{unique}", f"g-{unique}"
    log = log_opener()
    await log.start()
    await log.create_topic(topic, partitions=2)
    for i in range(20):
        await log.produce(topic, f"v{i}".encode(), key=f"k{i % 4}".encode())
    consumer = log.consumer(group, [topic])
    await consumer.start()
    first = await _drain(consumer, 20)
    # Commit only half of each partition.
    positions: dict[TopicPartition, int] = {}
    for record in first:
        positions.setdefault(record.tp, 0)
    by_tp = {tp: sorted(r.offset for r in first if r.tp == tp) for tp in positions}
    commit = {tp: offs[len(offs) // 2] for tp, offs in by_tp.items()}
    await consumer.commit(commit)
    for tp, offset in commit.items():
        assert await consumer.committed(tp) == offset
    assert await log.committed_offsets(group, topic) == {tp.partition: o for tp, o in commit.items()}
    await consumer.stop()
    await log.close()

    reopened = log_opener()
    await reopened.start()
    assert await reopened.partitions_for(topic) == 2
    assert await reopened.committed_offsets(group, topic) == {tp.partition: o for tp, o in commit.items()}
    ends = await reopened.end_offsets(topic)
    assert sum(ends.values()) == 20
    resumed = reopened.consumer(group, [topic])
    await resumed.start()
    expected = sum(len(offs) - len(offs) // 2 for offs in by_tp.values())
    again = await _drain(resumed, expected)
    assert sorted((r.partition, r.offset) for r in again) == sorted(
        (tp.partition, o) for tp, offs in by_tp.items() for o in offs if o >= commit[tp]
    )
    # New records after the reopen continue the offsets.
    meta = await reopened.produce(topic, b"after", partition=0)
    assert meta.offset == ends[0]
    await resumed.stop()
    await reopened.close()


async def test_seek_offset_and_timestamp(log, unique):
    topic = f"s-{unique}"
    await log.create_topic(topic, partitions=1)
    for i in range(5):
        await log.produce(topic, f"v{i}".encode(), partition=0, timestamp_ms=10_000 + 1000 * i)
    tp = TopicPartition(topic, 0)
    consumer = log.consumer(f"g-{unique}", [topic])
    await consumer.start()
    await _settle([consumer], lambda: tp in consumer.assignment())
    await consumer.seek(tp, 3)
    got = await _drain(consumer, 2)
    assert [r.offset for r in got] == [3, 4]
    assert await consumer.seek_to_timestamp(tp, 11_500) == 2
    assert [r.offset for r in await _drain(consumer, 3)] == [2, 3, 4]
    assert await consumer.seek_to_timestamp(tp, 10_000) == 0
    assert await consumer.seek_to_timestamp(tp, 0) == 0
    assert await consumer.seek_to_timestamp(tp, 99_000) == 5  # none: the end offset
    await consumer.seek(tp, 1)
    assert [r.value for r in await _drain(consumer, 4)] == [b"v1", b"v2", b"v3", b"v4"]
    await consumer.stop()


async def test_group_rebalance_two_members(log, unique):
    topic, group = f"g2-{unique}", f"grp-{unique}"
    await log.create_topic(topic, partitions=4)
    everything = {TopicPartition(topic, p) for p in range(4)}
    events: list[tuple[str, str, frozenset]] = []

    def callbacks(name: str) -> dict:
        async def on_assign(tps):
            events.append((name, "assign", frozenset(tps)))

        async def on_revoke(tps):
            events.append((name, "revoke", frozenset(tps)))

        return {"on_assign": on_assign, "on_revoke": on_revoke}

    a = log.consumer(group, [topic], **callbacks("a"))
    await a.start()
    await _settle([a], lambda: a.assignment() == everything)
    assert ("a", "assign", frozenset(everything)) in events or {
        tp for n, kind, tps in events if n == "a" and kind == "assign" for tp in tps
    } == everything

    b = log.consumer(group, [topic], **callbacks("b"))
    await b.start()
    await _settle([a, b], lambda: bool(a.assignment()) and bool(b.assignment())
                  and a.assignment() | b.assignment() == everything)
    assert not a.assignment() & b.assignment()
    assert any(n == "a" and kind == "revoke" for n, kind, _ in events)
    assert any(n == "b" and kind == "assign" for n, kind, _ in events)

    # Each record reaches exactly one member.
    for i in range(40):
        await log.produce(topic, str(i).encode(), key=f"k{i}".encode())
    seen: list[LogRecord] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while len(seen) < 40:
        assert loop.time() < deadline
        for consumer in (a, b):
            batch = await consumer.getmany(timeout_ms=100)
            for tp, records in batch.items():
                assert tp in consumer.assignment()
                seen.extend(records)
    assert sorted(int(r.value) for r in seen) == list(range(40))

    await b.stop()
    await _settle([a], lambda: a.assignment() == everything)
    await a.stop()


async def test_committed_none_and_bad_seek(log, unique):
    topic = f"n-{unique}"
    await log.create_topic(topic, partitions=1)
    consumer = log.consumer(f"g-{unique}", [topic])
    await consumer.start()
    assert await consumer.committed(TopicPartition(topic, 0)) is None
    assert await log.committed_offsets(f"g-{unique}", topic) == {}
    await consumer.stop()


# -- property: random produce/consume interleavings lose nothing and keep order --------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("produce"), st.integers(0, 4), st.integers(1, 5)),
        st.tuples(st.just("consume"), st.integers(1, 20)),
        st.tuples(st.just("commit_restart")),
    ),
    min_size=1, max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops, partitions=st.integers(1, 4))
async def test_property_order_and_no_loss(log, ops, partitions):
    import uuid

    suffix = uuid.uuid4().hex[:10]
    topic, group = f"prop-{suffix}", f"prop-{suffix}"
    await log.create_topic(topic, partitions=partitions)
    produced: dict[int, list[bytes]] = {}  # partition -> values in offset order
    consumed: dict[int, list[bytes]] = {}  # what the current member has read, from offset 0 on
    committed: dict[int, int] = {}
    counter = 0
    loop = asyncio.get_running_loop()
    consumer = log.consumer(group, [topic])
    await consumer.start()

    async def consume(limit: int) -> None:
        batch = await consumer.getmany(timeout_ms=50, max_records=limit)
        for tp, records in batch.items():
            offsets = [r.offset for r in records]
            # Contiguous, and exactly where this partition's reading left off.
            assert offsets == list(range(len(consumed.get(tp.partition, [])), len(consumed.get(tp.partition, [])) + len(offsets)))
            consumed.setdefault(tp.partition, []).extend(r.value for r in records)

    try:
        for op in ops:
            if op[0] == "produce":
                _, key, count = op
                for _ in range(count):
                    value = str(counter).encode()
                    counter += 1
                    meta = await log.produce(topic, value, key=f"key{key}".encode())
                    produced.setdefault(meta.partition, []).append(value)
                    assert meta.offset == len(produced[meta.partition]) - 1
            elif op[0] == "consume":
                await consume(op[1])
            else:
                # Commit what was read, then a fresh member resumes from the commits. Only an
                # owner may commit, and a remote group assigns on poll: poll until it has.
                deadline = loop.time() + 30
                while not consumer.assignment():
                    assert loop.time() < deadline, "never assigned"
                    await consume(1000)
                offsets = {tp: len(consumed.get(tp.partition, [])) for tp in consumer.assignment()}
                await consumer.commit(offsets)
                committed.update({tp.partition: o for tp, o in offsets.items()})
                await consumer.stop()
                consumed = {p: values[: committed.get(p, 0)] for p, values in consumed.items()}
                consumer = log.consumer(group, [topic])
                await consumer.start()
        total = sum(len(v) for v in produced.values())
        deadline = loop.time() + 15
        while sum(len(v) for v in consumed.values()) < total:
            assert loop.time() < deadline, "records lost"
            await consume(1000)
        assert {p: v for p, v in consumed.items() if v} == produced
    finally:
        await consumer.stop()


# -- FileLog only ------------------------------------------------------------------------------

def _file_log(path):
    from services.backends.embedded.filelog import FileLog

    return FileLog.from_url(f"file://{path}")


@pytest.mark.parametrize("garbage", [
    b"\x00\x00\x00\x40\x12\x34",  # half a frame header
    b"\x00\x00\x00\x20" + b"\x00" * 4 + b"partial body",  # a header promising more than exists
    None,  # the first half of a real record
    b"\xff" * 64,  # noise
])
async def test_filelog_torn_tail_is_truncated_on_open(tmp_path, garbage):
    from services.backends.embedded._logfiles import encode_record

    log = _file_log(tmp_path)
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

    reopened = _file_log(tmp_path)
    await reopened.start()
    assert reopened.truncated_bytes == len(garbage)
    assert segment.stat().st_size == intact
    assert await reopened.end_offsets("torn") == {0: 5}
    meta = await reopened.produce("torn", b"v5", key=b"k")
    assert meta.offset == 5
    consumer = reopened.consumer("g", ["torn"])
    await consumer.start()
    got = await _drain(consumer, 6)
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
    reopened = _file_log(tmp_path)
    await reopened.start()
    assert await reopened.end_offsets("crc") == {0: 3}  # offset 2 is a placeholder now
    assert [d.kind for d in reopened.damage] == ["corrupt"]
    assert reopened.damage[0].lost_offsets == [2, 3]
    assert any("lost offsets 2..2" in p for p in reopened.problems())
    assert (await reopened.produce("crc", b"after")).offset == 3
    consumer = reopened.consumer("g", ["crc"])
    await consumer.start()
    got = await _drain(consumer, 3)
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
    reopened = _file_log(tmp_path)
    await reopened.start()
    assert reopened.truncated_bytes == 0
    (damage,) = reopened.damage
    assert damage.kind == "corrupt" and damage.lost_offsets == [7, 8]
    assert (tmp_path / "damage").is_dir() and any((tmp_path / "damage").glob("*.json"))
    assert await reopened.end_offsets("mid") == {0: 20}
    consumer = reopened.consumer("g", ["mid"])
    await consumer.start()
    got = await _drain(consumer, 19)
    assert [r.value for r in got] == values[:7] + values[8:]
    await consumer.stop()
    await reopened.close()
    # Repaired on disk: the next start finds nothing new, but stays degraded until the
    # operator clears the report (docs/operations.md).
    again = _file_log(tmp_path)
    await again.start()
    assert again.damage == [] and again.problems()
    await again.close()
    for report in (tmp_path / "damage").iterdir():
        report.unlink()
    cleared = _file_log(tmp_path)
    await cleared.start()
    assert cleared.problems() == []
    await cleared.close()


async def test_filelog_damage_in_an_older_segment_no_longer_refuses_to_start(tmp_path):
    log = await _filelog_with(tmp_path, "old", [f"value-{i:03d}".encode() for i in range(30)], segment_bytes=200)
    await log.close()
    first = sorted((tmp_path / "topics" / "old" / "0").glob("*.log"))[0]
    _flip(first, first.stat().st_size - 3)  # the last record of the oldest segment
    reopened = _file_log(tmp_path)
    await reopened.start()
    (damage,) = reopened.damage
    assert damage.kind == "corrupt" and damage.lost_offsets[1] - damage.lost_offsets[0] == 1
    consumer = reopened.consumer("g", ["old"])
    await consumer.start()
    got = await _drain(consumer, 29)
    assert len(got) == 29 and len({r.offset for r in got}) == 29
    await consumer.stop()
    await reopened.close()


async def test_filelog_committed_offset_past_the_end_is_moved_back(tmp_path):
    log = await _filelog_with(tmp_path, "gone", [f"v{i}".encode() for i in range(5)])
    consumer = log.consumer("g", ["gone"])
    await consumer.start()
    await _drain(consumer, 5)
    await consumer.commit({TopicPartition("gone", 0): 5})
    await consumer.stop()
    await log.close()
    segment = next((tmp_path / "topics" / "gone" / "0").glob("*.log"))
    with open(segment, "rb+") as handle:  # as if the last two records never reached the disk
        handle.truncate(segment.stat().st_size * 3 // 5 + 3)
    reopened = _file_log(tmp_path)
    await reopened.start()
    kinds = sorted(d.kind for d in reopened.damage)
    assert kinds == ["committed_past_end", "torn_tail"]
    assert await reopened.committed_offsets("g", "gone") == {0: 3}
    assert any("resumes at 3" in p for p in reopened.problems())
    for i in range(3):
        await reopened.produce("gone", f"new{i}".encode())
    consumer = reopened.consumer("g", ["gone"])
    await consumer.start()
    got = await _drain(consumer, 3)
    assert [r.value for r in got] == [b"new0", b"new1", b"new2"]  # none skipped
    await consumer.stop()
    await reopened.close()


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
    got = await _drain(consumer, 45 - start)
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
    got = await _drain(consumer, 30)
    assert [r.value for r in got] == [f"value-{i:03d}".encode() for i in range(30)]
    tp = TopicPartition("roll", 0)
    assert await consumer.seek_to_timestamp(tp, 17_500) == 18
    assert [r.offset for r in await _drain(consumer, 12)] == list(range(18, 30))
    await consumer.stop()
    await reopened.close()


async def test_filelog_directory_lock_and_idempotent_lifecycle(tmp_path):
    log = _file_log(tmp_path)
    await log.start()
    await log.start()
    other = _file_log(tmp_path)
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
    log = _file_log(tmp_path)
    await log.start()
    with pytest.raises(InvalidInput):
        await log.create_topic("../escape", partitions=1)
    await log.close()
    assert not (tmp_path.parent / "escape").exists()
    assert os.path.isdir(tmp_path / "topics")
