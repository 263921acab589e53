"""The L1 -> L2 archive (services/archive) on SQLite + a directory and on a real PostgreSQL +
the real S3 server: what moves, that it reads back the same, restore, tampering, and the
partition drop. Crash points are in test_archive_crashes.py."""

from __future__ import annotations

import io
from dataclasses import replace

import pyarrow.parquet as pq
import pytest

from services.archive import ArchivePolicy, Archiver, TieredHistory
from services.backends.messagedb.history import ArchiveLocked
from services.common.errors import Conflict
from services.common.model import now_ms

from .archive_env import DAY_MS, make_env, traffic


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
async def env(request, tmp_path):
    made = await make_env(request.param, request, tmp_path).open()
    yield made
    await made.close()


OLD = now_ms() - 40 * DAY_MS


async def _seed(env, conversations=None):
    messages = traffic(conversations or {"group:a": 30, "group:b": 12, "c2c:x:y": 5}, start_ms=OLD)
    await env.db.insert_messages(messages)
    return messages


async def test_plan_then_run_moves_old_rows_to_verified_parquet_chunks(env):
    messages = await _seed(env)
    recent = traffic({"group:a": 1}, start_ms=now_ms(), prefix="new")
    recent[0].seq = 31
    await env.db.insert_messages(recent)
    archiver = Archiver(env.db, env.objects, ArchivePolicy(codec="lz4", chunk_rows=20))
    cutoff = now_ms() - 30 * DAY_MS
    plan = await archiver.plan(before_ms=cutoff)
    assert [(r.conversation_id, r.min_seq, r.max_seq, r.row_count) for r in plan] == [
        ("c2c:x:y", 1, 5, 5), ("group:a", 1, 30, 30), ("group:b", 1, 12, 12)]
    assert all(r.body_bytes > 0 for r in plan)

    report = await archiver.run(before_ms=cutoff)
    assert report.rows_archived == 47 == report.rows_left_l1 and [c["rows"] for c in report.chunks] == [20, 20, 7]
    # L1 keeps only the recent row; seq allocation and counts still see the archived ones.
    assert [m.seq for m in await env.db.messages_after("group:a", 0)] == [31]
    assert await env.db.max_seqs(["group:a", "group:b"]) == {"group:a": 31, "group:b": 12}
    assert await env.db.count_messages() == 48
    with pytest.raises(Conflict):
        await env.db.insert_messages(traffic({"group:b": 1}, start_ms=now_ms(), prefix="clash"))  # seq 1 is taken
    await env.db.insert_messages([messages[0]])  # a re-consumed archived record: a no-op
    assert [m.seq for m in await env.db.messages_after(messages[0].conversation_id, 0)] == [31]

    # Each object is a Parquet file with the policy's codec, described by its manifest.
    chunks = await archiver.list()
    assert [c.state for c in chunks] == ["archived"] * 3
    data = await env.objects.get(chunks[0].object_key)
    parquet = pq.ParquetFile(io.BytesIO(data))
    assert parquet.metadata.num_rows == 20 and parquet.metadata.row_group(0).column(0).compression == "LZ4"
    manifest = await archiver.read_manifest(chunks[0])
    assert (manifest.row_count, manifest.codec, manifest.sha256) == (20, "lz4", chunks[0].sha256)
    assert {c.conversation_id for c in manifest.conversations} == {"c2c:x:y", "group:a"}
    assert all(r.ok for r in await archiver.verify())

    # Sync's reader gives back exactly what was stored, in seq order, from L2 and L1 together.
    history = TieredHistory(env.db, env.objects)
    by_conv = [m for m in messages if m.conversation_id == "group:a"]
    assert await history.messages_after("group:a", 0, limit=100) == by_conv + recent
    assert await history.messages_after("group:a", 25, limit=3) == by_conv[25:28]
    assert await history.messages_after("group:b", 0, limit=5) == [m for m in messages if m.conversation_id == "group:b"][:5]


async def test_duplicate_detection_covers_archived_messages(env):
    # An archived message leaves find_existing (L1 rows only) but not find_msg_ids: its
    # resend (a new msg_id, the same sender and client_msg_id) and its record read again
    # (the same msg_id) are both recognised, and an unknown message is not.
    messages = await _seed(env)
    recent = traffic({"group:a": 1}, start_ms=now_ms(), prefix="new")
    recent[0].seq = 31
    await env.db.insert_messages(recent)
    await Archiver(env.db, env.objects, ArchivePolicy(chunk_rows=20)).run(before_ms=now_ms() - 30 * DAY_MS)
    old = messages[3]
    resend = replace(old, msg_id=old.msg_id + 900_000_000, seq=0)
    unknown = replace(old, msg_id=old.msg_id + 800_000_000, client_msg_id="never-sent", seq=0)
    assert await env.db.find_existing([old, resend, recent[0]]) == {recent[0].msg_id: recent[0]}
    assert await env.db.find_msg_ids([old, resend, unknown, recent[0]]) == {
        old.msg_id: old.msg_id, resend.msg_id: old.msg_id, recent[0].msg_id: recent[0].msg_id}
    assert await env.db.find_msg_ids([]) == {}


async def test_limit_dry_run_and_a_second_run_with_nothing_to_do(env):
    await _seed(env)
    archiver = Archiver(env.db, env.objects, ArchivePolicy(chunk_rows=10))
    cutoff = now_ms()
    dry = await archiver.run(before_ms=cutoff, dry_run=True)
    assert dry.rows_archived == 47 and dry.chunks == [] and await archiver.list() == []
    first = await archiver.run(before_ms=cutoff, limit=15)
    assert first.rows_archived == 15 and [c["rows"] for c in first.chunks] == [10, 5]
    rest = await archiver.run(before_ms=cutoff)
    assert rest.rows_archived == 32
    assert (await archiver.run(before_ms=cutoff)).rows_archived == 0
    assert await archiver.plan(before_ms=cutoff) == []


async def test_restore_a_chunk_and_a_conversation_is_idempotent(env):
    messages = await _seed(env)
    archiver = Archiver(env.db, env.objects, ArchivePolicy(chunk_rows=100))
    await archiver.run(before_ms=now_ms())
    (chunk,) = await archiver.list()
    b = [m for m in messages if m.conversation_id == "group:b"]
    assert await archiver.restore(conversation_id="group:b") == {chunk.chunk_id: 12}
    assert await env.db.messages_after("group:b", 0) == b
    assert await archiver.restore(conversation_id="group:b") == {}  # nothing archived is left of it
    assert await env.db.messages_after("group:a", 0) == []
    assert (await archiver.list())[0].state == "archived"
    assert await archiver.restore(chunk_id=chunk.chunk_id) == {chunk.chunk_id: 35}
    assert await archiver.restore(chunk_id=chunk.chunk_id) == {}
    assert (await archiver.list())[0].state == "restored"
    assert await env.db.messages_after("group:a", 0, limit=100) == [m for m in messages if m.conversation_id == "group:a"]
    # Restored rows are plain L1 rows again: sync reads them once, the reader no longer goes to L2.
    assert await env.db.archived_ranges("group:a") == []
    assert await archiver.verify() == []


async def test_restore_a_conversation_by_time_window(env):
    messages = await _seed(env, {"group:w": 30})
    archiver = Archiver(env.db, env.objects, ArchivePolicy(chunk_rows=10))
    await archiver.run(before_ms=now_ms())
    ten = [m for m in messages if 11 <= m.seq <= 20]
    added = await archiver.restore(conversation_id="group:w", since_ms=ten[0].created_at, until_ms=ten[-1].created_at)
    assert list(added.values()) == [10]
    assert await env.db.messages_after("group:w", 0) == ten


async def test_verify_names_a_tampered_and_a_missing_chunk(env):
    await _seed(env)
    archiver = Archiver(env.db, env.objects, ArchivePolicy(chunk_rows=20))
    await archiver.run(before_ms=now_ms())
    first, second, third = await archiver.list()
    data = bytearray(await env.objects.get(first.object_key))
    data[len(data) // 2] ^= 0xFF
    await env.objects.put(first.object_key, bytes(data))
    await env.objects.delete(second.object_key)
    results = {r.chunk_id: r for r in await archiver.verify()}
    assert not results[first.chunk_id].ok and f"chunk {first.chunk_id}: sha256" in results[first.chunk_id].problem
    assert not results[second.chunk_id].ok and "is missing" in results[second.chunk_id].problem
    assert results[third.chunk_id].ok and results[third.chunk_id].rows == 7
    only = await archiver.verify(chunk_id=third.chunk_id)
    assert [(r.chunk_id, r.ok) for r in only] == [(third.chunk_id, True)]


async def test_one_archive_job_at_a_time(env):
    await _seed(env)
    archiver = Archiver(env.db, env.objects, ArchivePolicy(lock_timeout_s=0.3))
    async with env.db.archive_lock(timeout_s=1):
        with pytest.raises(ArchiveLocked):
            await archiver.run(before_ms=now_ms())
    assert await archiver.list() == []


@pytest.mark.servers
async def test_postgres_drops_a_whole_archived_month_partition(request, tmp_path):
    env = await make_env("postgres", request, tmp_path).open()
    try:
        from datetime import UTC, datetime

        from services.backends.messagedb.postgres.partitions import month_start

        last_month = month_start(datetime.now(UTC), -1)
        name = f"messages_p{last_month:%Y%m}"
        assert env.psql(f"SELECT to_regclass('{name}') IS NOT NULL").strip() == "t"
        start = int(last_month.timestamp() * 1000) + DAY_MS
        messages = traffic({"group:p": 40}, start_ms=start, step_ms=60_000)
        await env.db.insert_messages(messages)
        this_month = int(month_start(datetime.now(UTC)).timestamp() * 1000)
        archiver = Archiver(env.db, env.objects, ArchivePolicy(chunk_rows=1000))
        report = await archiver.run(before_ms=this_month)
        assert report.rows_archived == 40 == report.rows_left_l1
        assert env.psql(f"SELECT to_regclass('{name}') IS NULL").strip() == "t"  # detached and dropped
        assert env.psql("SELECT count(*) FROM message_keys").strip() == "40"  # keys stay
        history = TieredHistory(env.db, env.objects)
        assert await history.messages_after("group:p", 0, limit=100) == messages
    finally:
        await env.close()
