"""kill -9 of an archive run at each point of a chunk's life, then a rerun: every message is
exactly once across L1 ∪ L2, no object is left orphaned, and sync reads it all back.
SQLite + a directory, and a real PostgreSQL + the real S3 server."""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from services.archive import ArchivePolicy, Archiver, TieredHistory
from services.common.model import now_ms

from .archive_env import DAY_MS, make_env, traffic

ROOT = Path(__file__).resolve().parents[2]
CHUNK_ROWS = 25


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
async def env(request, tmp_path):
    made = await make_env(request.param, request, tmp_path).open()
    yield made
    await made.close()


async def _l1_ids(env) -> list[int]:
    return [m.msg_id for m in await env.db.archive_batch(before_ms=now_ms() + DAY_MS, limit=1_000_000)]


async def _l2_ids(env, archiver: Archiver) -> list[int]:
    ids = []
    for chunk in await env.db.archive_chunks(state="archived"):
        ids += [m.msg_id for m in await archiver.verified_rows(await archiver.read_manifest(chunk))]
    return ids


@pytest.mark.parametrize("point,recovery", [
    ("before_upload", "discarded"), ("after_upload", "resumed"), ("after_verify", "resumed"),
    ("mid_delete", "resumed"),
])
async def test_kill_9_then_rerun_leaves_every_message_exactly_once(env, point, recovery):
    messages = traffic({"group:a": 50, "group:b": 30}, start_ms=now_ms() - 40 * DAY_MS)
    await env.db.insert_messages(messages)
    everything = sorted(m.msg_id for m in messages)
    cutoff = now_ms() - 30 * DAY_MS
    proc = subprocess.run(
        [sys.executable, "-m", "tests.integration.archive_crash_driver", env.db_url, env.objects_url, point,
         str(cutoff), str(CHUNK_ROWS)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    archiver = Archiver(env.db, env.objects, ArchivePolicy(chunk_rows=CHUNK_ROWS))
    # Right after the kill: one chunk is archived, one is pending, nothing is lost and no
    # message is both in L1 and in an archived chunk.
    assert [c.state for c in await archiver.list()] == ["archived", "pending"]
    l1, l2 = await _l1_ids(env), await _l2_ids(env, archiver)
    assert sorted(l1 + l2) == everything

    report = await archiver.run(before_ms=cutoff)
    assert len(getattr(report, recovery)) == 1
    l1, l2 = await _l1_ids(env), await _l2_ids(env, archiver)
    assert l1 == [] and sorted(l2) == everything
    assert max(collections.Counter(l1 + l2).values()) == 1

    chunks = await archiver.list()
    assert {c.state for c in chunks} == {"archived"} and sum(c.row_count for c in chunks) == len(messages)
    keys = {info.key for info in await env.objects.list("archive/")}
    assert keys == {k for c in chunks for k in (c.object_key, c.manifest_key)}  # nothing orphaned
    assert all(r.ok for r in await archiver.verify())
    history = TieredHistory(env.db, env.objects)
    for conversation_id in ("group:a", "group:b"):
        assert await history.messages_after(conversation_id, 0, limit=100) == [
            m for m in messages if m.conversation_id == conversation_id]
