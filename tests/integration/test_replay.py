"""Replay into the store on real backends: the embedded file log + SQLite, and Kafka + PostgreSQL.

Rows are lost with the database's own client while a live store keeps consuming new
traffic; replay must put back exactly the lost ones with their original seqs, leave every
stored one alone, never collide with live seqs, and change nothing the second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import pytest

from services.replay import Window

from .replay_harness import Deployment, assert_consistent, unique_config


@pytest.fixture(params=["embedded", pytest.param("kafka", marks=pytest.mark.servers)])
async def deployment(request, tmp_path):
    if request.param == "embedded":
        log_url, db_url = f"file://{tmp_path}/log?fsync=never", f"sqlite:///{tmp_path}/messages.db"
    else:
        kafka = request.getfixturevalue("kafka_server")
        postgres = request.getfixturevalue("postgres_server")
        log_url = kafka.url
        db_url = postgres.create_database(f"replay_{uuid.uuid4().hex[:10]}")
    dep = Deployment(log_url=log_url, db_url=db_url, config=unique_config(), checkpoints=tmp_path / "replay")
    await dep.start()
    yield dep
    await dep.close()


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_lost_rows_come_back_with_their_seqs_while_traffic_continues(deployment):
    dep = deployment
    base = now_ms() - 60_000
    conversations = ["group:middle", "group:tail", "c2c:alice:bob", "group:untouched"]
    for i in range(40):
        for c, conversation in enumerate(conversations):
            await dep.send(conversation, timestamp_ms=base + i * 100 + c)
    await dep.settled()
    before = await dep.seqs()
    assert len(before) == 160
    sent = {m.msg_id: m for m in dep.sent}

    def pick(conversation: str, seqs: range) -> list[int]:
        return [i for i, (c, s) in before.items() if c == conversation and s in seqs]

    # the middle of one conversation, the newest of another, a scattered few of a third
    lost = pick("group:middle", range(10, 17)) + pick("group:tail", range(34, 41)) \
        + pick("c2c:alice:bob", range(5, 30, 6))
    await dep.delete(lost)
    # traffic continues after the loss, also in the conversation that lost its newest rows
    for i in range(10):
        for conversation in conversations:
            await dep.send(conversation)
    await dep.settled()
    assert set(await dep.seqs()) == set(sent) - set(lost) | {m.msg_id for m in dep.sent[160:]}

    gaps = await dep.consistency()
    assert gaps and {f["conversation_id"] for f in gaps} == {"group:middle", "group:tail", "c2c:alice:bob"}

    window = Window(base, base + 40 * 100)
    dry = await dep.replay(window, dry_run=True)
    assert dry.tally.to_dict() | {} == {"scanned": 160, "applied": len(lost), "restored": len(lost), "appended": 0,
                                          "skipped": 160 - len(lost), "duplicates": 0, "errors": 0}
    assert len(await dep.seqs()) == 200 - len(lost), "a dry run wrote something"

    async def traffic() -> None:  # live traffic while replay runs, into the same conversations
        for _ in range(15):
            for conversation in conversations:
                await dep.send(conversation)
            await asyncio.sleep(0.02)

    live = asyncio.create_task(traffic())
    result = await dep.replay(window)
    await live
    await dep.settled()
    assert result.tally.restored == len(lost) and result.tally.appended == 0 and result.tally.errors == 0
    after = await dep.seqs()
    assert_consistent(after)
    # every lost message has exactly the seq it had; nothing else moved; live traffic kept its seqs
    assert {i: after[i] for i in before} == before
    assert set(after) == set(sent) | {m.msg_id for m in dep.sent[160:]}
    for conversation in conversations:
        assert sorted(s for c, s in after.values() if c == conversation) == list(range(1, 66))
    assert await dep.consistency() == []  # what `flarectl check consistency` checks: no gap, no duplicate

    # twice = no change
    again = await dep.replay(window)
    assert (again.tally.applied, again.tally.skipped, again.tally.scanned) == (0, 160, 160)
    assert await dep.seqs() == after


async def test_bounds_are_half_open_and_exact(deployment):
    dep = deployment
    since = now_ms() - 30_000
    until = since + 1000
    conversation = "group:bounds"
    at = {}
    for name, ts in [("before", since - 1), ("at_since", since), ("last_in", until - 1), ("at_until", until),
                     ("after", until + 500)]:
        at[name] = await dep.send(conversation, timestamp_ms=ts)
    await dep.settled()
    before = await dep.seqs()
    await dep.delete([at[n].msg_id for n in ("before", "at_since", "last_in", "at_until")])

    result = await dep.replay(Window(since, until))
    partitions = [p for p in result.plan.partitions if p.records]
    assert [p.records for p in partitions] == [2]  # at_since and last_in: offsets fixed at plan time
    assert partitions[0].end - partitions[0].start == 2
    assert result.tally.to_dict()["restored"] == 2 and result.tally.scanned == 2
    after = await dep.seqs()
    # only the two inside the window, each with its original seq; the ones at since-1 and until stay lost
    assert after == {at[n].msg_id: before[at[n].msg_id] for n in ("at_since", "last_in", "after")}

    # a window after the last record, and one before the first: nothing to read, no error
    late = await dep.replay(Window(until + 10_000, until + 20_000))
    early = await dep.replay(Window(since - 20_000, since - 10_000))
    for empty in (late, early):
        assert empty.plan.records == 0 and empty.tally.scanned == 0 and empty.tally.errors == 0


async def test_taken_seqs_go_back_to_the_live_owner(deployment):
    """The owner restarted after the loss and reused the lost seqs: replay cannot put them back
    in place, so it hands them to the owner, which appends them in order after live traffic."""
    dep = deployment
    base = now_ms() - 30_000
    conversation = "group:reused"
    for i in range(10):
        await dep.send(conversation, timestamp_ms=base + i)
    await dep.settled()
    before = await dep.seqs()
    lost = [i for i, (_, s) in before.items() if s > 6]
    await dep.delete(lost)
    await dep.stop_store()
    await dep.start_store()  # counters from the DB's max seq: 6
    newer = [await dep.send(conversation) for _ in range(2)]
    await dep.settled()
    assert [(await dep.seqs())[m.msg_id][1] for m in newer] == [7, 8]

    result = await dep.replay(Window(base, base + 10), owner_timeout_s=60)
    assert (result.tally.appended, result.tally.restored, result.awaiting_owner) == (len(lost), 0, {})
    after = await dep.seqs()
    assert_consistent(after)
    assert sorted(s for _, s in after.values()) == list(range(1, 13))
    assert [after[i][1] for i in sorted(lost, key=lambda i: before[i][1])] == [9, 10, 11, 12]

    again = await dep.replay(Window(base, base + 10), owner_timeout_s=60)
    assert again.tally.applied == 0 and await dep.seqs() == after


async def test_an_interrupted_replay_resumes_from_its_checkpoint(deployment):
    dep = deployment
    base = now_ms() - 30_000
    for i in range(300):
        await dep.send(f"group:r{i % 3}", timestamp_ms=base + i)
    await dep.settled()
    before = await dep.seqs()
    lost = [i for i, (_, s) in before.items() if s % 7 == 3]
    await dep.delete(lost)
    window = Window(base, base + 300)

    class Killed(Exception):
        pass

    calls = []

    def kill_after_two_chunks(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 3:  # the first call reports the start (0 read)
            raise Killed

    run_id = "rp-test-resume"
    with pytest.raises(Killed):
        await dep.replay(window, run_id=run_id, on_progress=kill_after_two_chunks, chunk=40, checkpoint_every_s=0)
    half = await dep.seqs()
    assert len(before) - len(lost) < len(half) < len(before), "the kill came too late or too early"

    result = await dep.replay(window, run_id=run_id, resume=True, chunk=40)
    assert await dep.seqs() == before
    assert result.tally.scanned == 300 and result.tally.applied == len(lost)
    assert result.tally.skipped == 300 - len(lost)


async def test_one_conversation_only(deployment):
    dep = deployment
    base = now_ms() - 30_000
    for i in range(20):
        for conversation in ("group:one", "group:other"):
            await dep.send(conversation, timestamp_ms=base + i * 10)
    await dep.settled()
    before = await dep.seqs()
    lost = [i for i, (_, s) in before.items() if 5 <= s <= 8]
    await dep.delete(lost)

    result = await dep.replay(Window(base, base + 200), conversation="group:one")
    assert (result.tally.scanned, result.tally.restored, result.tally.skipped) == (20, 4, 16)
    after = await dep.seqs()
    assert {i for i in before if i not in after} == {i for i in lost if before[i][0] == "group:other"}
    assert all(after[i] == before[i] for i in after)


async def test_handed_back_messages_the_owner_does_not_keep_are_errors(deployment):
    """An owner that commits past the handed-back records without persisting them (a broken
    dedup, say) is caught: replay checks the MessageDB, not only the owner's offsets."""
    dep = deployment
    base = now_ms() - 30_000
    for i in range(4):
        await dep.send("group:dropped", timestamp_ms=base + i)
    await dep.settled()
    await dep.delete([m.msg_id for m in dep.sent])  # nothing left to anchor on: handed back
    await dep.stop_store()

    async def careless_owner() -> None:  # reads and commits in the live group, stores nothing
        consumer = dep.log.consumer(dep.config.consumer_group, [dep.config.topic])
        await consumer.start()
        try:
            for _ in range(300):
                batches = await consumer.getmany(timeout_ms=100)
                if batches:
                    await consumer.commit({tp: recs[-1].offset + 1 for tp, recs in batches.items()})
        finally:
            await consumer.stop()

    owner = asyncio.create_task(careless_owner())
    result = await dep.replay(Window(base, base + 10), owner_timeout_s=30)
    owner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await owner
    assert (result.tally.appended, result.tally.errors, result.awaiting_owner) == (0, 4, {})
