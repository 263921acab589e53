"""`flarectl check consistency` on SQLite + a directory and on a real PostgreSQL + the real S3
server: a clean deployment exits 0; a corrupted row, a deleted row, a tampered and a missing
L2 object, a cursor past max, a missing member and log records stored nowhere are each found
and named; exit 1."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest

from services.archive import ArchivePolicy, Archiver
from services.backends.messagedb import CursorUpdate
from services.backends.registry import open_log
from services.common import codec
from services.common.model import now_ms

from .archive_env import DAY_MS, make_env, traffic


@pytest.fixture
def cli(cli):
    """The shared runner (tests/cli_runner.py), taking paths and numbers as arguments too."""
    return lambda *args: cli(*(str(a) for a in args))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
def env(request, tmp_path):
    made = make_env(request.param, request, tmp_path)
    start = now_ms() - 40 * DAY_MS
    made.messages = traffic({"group:a": 30, "c2c:alice:bob": 10}, start_ms=start)

    async def seed():
        await made.open()
        await made.db.insert_messages(made.messages)
        await made.db.add_members("group:a", ["alice", "bob", "carol"])
        await made.db.add_members("c2c:alice:bob", ["alice", "bob"])
        await made.db.advance_cursors([CursorUpdate("bob", "phone", "group:a", seq=30)])  # type: ignore[arg-type]
        # group:a seqs 1..20 go to L2 (two chunks); the rest stays in L1
        await Archiver(made.db, made.objects, ArchivePolicy(chunk_rows=15)).run(before_ms=start + 20 * 1000)
        await made.close()

    asyncio.run(seed())
    made.args = ("--url", made.db_url, "--objects", made.objects_url, "--no-log")
    return made


def _check(cli, env, *extra) -> tuple[int, dict]:
    result = cli("check", "consistency", *env.args, *extra, "-o", "json")
    return result.exit_code, json.loads(result.stdout)


def _sql(env, statement: str) -> None:
    if env.kind == "sqlite":
        with sqlite3.connect(env.db_url.removeprefix("sqlite:///")) as conn:
            conn.execute(statement)
    else:
        env.psql(statement)


def _kinds(report: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in report["findings"]:
        out.setdefault(f["kind"], []).append(f)
    return out


def test_a_whole_deployment_is_consistent(cli, env):
    code, report = _check(cli, env)
    assert (code, report["findings"]) == (0, [])
    assert report["checked"]["l2_rows"] == 20 and report["checked"]["l1_rows"] == 20  # half of it archived
    assert report["checked"]["conversations"] == 2
    human = cli("check", "consistency", *env.args)
    assert human.exit_code == 0 and human.stdout.startswith("consistent: ")


def test_a_corrupted_and_a_deleted_row_are_named(cli, env):
    recent = [m for m in env.messages if m.conversation_id == "c2c:alice:bob"]  # still in L1
    corrupted, deleted = recent[3], recent[6]
    _sql(env, f"UPDATE messages SET seq = seq + 100 WHERE msg_id = {corrupted.msg_id}")
    _sql(env, f"DELETE FROM messages WHERE msg_id = {deleted.msg_id}")
    code, report = _check(cli, env)
    assert code == 1
    kinds = _kinds(report)
    gaps = {(f["ids"]["first"], f["ids"]["last"]) for f in kinds["seq_gap"]}
    if env.kind == "sqlite":  # the row itself is the only record: the holes it leaves are the finding
        assert {(4, 4), (7, 7), (11, 103)} <= gaps
    else:  # message_keys still knows both: the row's lie and the lost row are named by msg_id
        assert [f["ids"]["msg_id"] for f in kinds["key_mismatch"]] == [corrupted.msg_id]
        assert [f["ids"]["msg_id"] for f in kinds["row_missing"]] == [deleted.msg_id]
        assert (11, 103) in gaps
    assert all(f["conversation_id"] == "c2c:alice:bob" for fs in kinds.values() for f in fs)


@pytest.mark.parametrize("damage", ["tamper", "delete"])
def test_a_tampered_or_missing_l2_object_is_named(cli, env, damage):
    async def hurt() -> str:
        await env.open()
        chunk = (await env.db.archive_chunks())[0]
        if damage == "tamper":
            data = bytearray(await env.objects.get(chunk.object_key))
            data[len(data) // 3] ^= 0x20
            await env.objects.put(chunk.object_key, bytes(data))
        else:
            await env.objects.delete(chunk.object_key)
        await env.close()
        return chunk.chunk_id

    chunk_id = asyncio.run(hurt())
    code, report = _check(cli, env)
    assert code == 1
    kind = "l2_object_mismatch" if damage == "tamper" else "l2_object_missing"
    assert [f["ids"]["chunk_id"] for f in report["findings"]] == [chunk_id]
    assert [f["kind"] for f in report["findings"]] == [kind]  # its rows are not reported again as gaps


def test_cursors_members_orphans_and_scoping(cli, env):
    async def skew():
        await env.open()
        await env.db.advance_cursors([CursorUpdate("carol", "tablet", "group:a", seq=99)])  # type: ignore[arg-type]
        await env.db.remove_members("c2c:alice:bob", ["bob"])
        await env.objects.put("archive/chunks/stray.parquet", b"left by hand")
        await env.close()

    asyncio.run(skew())
    code, report = _check(cli, env)
    assert code == 1
    kinds = _kinds(report)
    assert [(f["ids"]["user_id"], f["ids"]["seq"], f["ids"]["max_seq"]) for f in kinds["cursor_beyond_max"]] == [
        ("carol", 99, 30)]
    assert [(f["conversation_id"], f["ids"]["users"]) for f in kinds["membership_missing"]] == [
        ("c2c:alice:bob", ["bob"])]
    assert [f["ids"]["object_key"] for f in kinds["l2_orphan_object"]] == ["archive/chunks/stray.parquet"]
    code, scoped = _check(cli, env, "--conversation", "group:a")
    assert code == 1 and {f["kind"] for f in scoped["findings"]} == {"cursor_beyond_max"}
    human = cli("check", "consistency", *env.args)
    assert "cursor_beyond_max" in human.stdout and "1 cursor_beyond_max" in human.stdout


def test_log_records_consumed_but_stored_nowhere(cli, env, tmp_path):
    """The store's log: every consumed record must be stored with its msg_id."""
    log_url = f"file://{tmp_path / 'log'}"
    recent = [m for m in env.messages if m.conversation_id == "c2c:alice:bob"]

    async def write_log():
        log = open_log(log_url)
        await log.start()
        await log.create_topic("flare.messages", partitions=2)
        for m in recent:
            wire = dict(m.to_wire(), seq=0)
            await log.produce("flare.messages", codec.dumps(wire), key=m.conversation_id.encode())
        consumer = log.consumer("flare-store", ["flare.messages"])
        await consumer.start()
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=100)
        await consumer.commit({tp: (await log.end_offsets("flare.messages"))[tp.partition]
                               for tp in consumer.assignment()})
        await consumer.stop()
        await log.close()

    asyncio.run(write_log())
    args = ("check", "consistency", "--url", env.db_url, "--objects", env.objects_url, "--log-url", log_url, "-o", "json")
    clean = cli(*args)
    assert clean.exit_code == 0, clean.stdout
    assert json.loads(clean.stdout)["checked"]["log_records"] == 10
    _sql(env, f"DELETE FROM messages WHERE msg_id = {recent[2].msg_id}")
    if env.kind == "postgres":
        _sql(env, f"DELETE FROM message_keys WHERE msg_id = {recent[2].msg_id}")
    found = cli(*args)
    assert found.exit_code == 1
    kinds = _kinds(json.loads(found.stdout))
    assert [f["ids"]["msg_id"] for f in kinds["log_record_missing"]] == [recent[2].msg_id]
