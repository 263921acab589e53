"""Contract for the Log port (services/backends/log.py), run against every adapter.

Topics and groups carry a random suffix so the suite can share one real server. What only
FileLog promises (torn tails, damaged segments, retention, the directory lock) is in
test_log_filelog_repair.py and test_log_filelog_files.py.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.backends.log import Log, LogRecord, TopicPartition
from services.common.errors import InvalidInput, NotFound
from tests.contract.log_reads import drain, settle


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
    got = await drain(consumer, 30)
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
    got = await drain(consumer, 200)
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
    got = await drain(consumer, 10)
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
    await settle([consumer], lambda: bool(consumer.assignment()))
    await consumer.seek(TopicPartition(topic, 0), 0)
    batch = await consumer.getmany(timeout_ms=5000, max_records=10)
    assert 0 < sum(len(r) for r in batch.values()) <= 10
    await consumer.stop()


async def test_getmany_wakes_on_append(log, unique):
    topic = f"w-{unique}"
    await log.create_topic(topic, partitions=2)
    consumer = log.consumer(f"g-{unique}", [topic])
    await consumer.start()
    await settle([consumer], lambda: len(consumer.assignment()) == 2)
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
    first = await drain(consumer, 20)
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
    again = await drain(resumed, expected)
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
    await settle([consumer], lambda: tp in consumer.assignment())
    await consumer.seek(tp, 3)
    got = await drain(consumer, 2)
    assert [r.offset for r in got] == [3, 4]
    assert await consumer.seek_to_timestamp(tp, 11_500) == 2
    assert [r.offset for r in await drain(consumer, 3)] == [2, 3, 4]
    assert await consumer.seek_to_timestamp(tp, 10_000) == 0
    assert await consumer.seek_to_timestamp(tp, 0) == 0
    assert await consumer.seek_to_timestamp(tp, 99_000) == 5  # none: the end offset
    await consumer.seek(tp, 1)
    assert [r.value for r in await drain(consumer, 4)] == [b"v1", b"v2", b"v3", b"v4"]
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
    await settle([a], lambda: a.assignment() == everything)
    assert ("a", "assign", frozenset(everything)) in events or {
        tp for n, kind, tps in events if n == "a" and kind == "assign" for tp in tps
    } == everything

    b = log.consumer(group, [topic], **callbacks("b"))
    await b.start()
    await settle([a, b], lambda: bool(a.assignment()) and bool(b.assignment())
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
    await settle([a], lambda: a.assignment() == everything)
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
