"""`flarectl replay` on an embedded data dir: the whole command, its plan, its summary and codes.

The embedded file log is held by one process at a time, so these runs happen with the
deployment stopped (the live-traffic cases run in test_replay.py on the engine).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import datetime, timedelta, timezone

from services.common.config import StoreConfig

from .replay_harness import Deployment


def _iso(ms: int, offset: timedelta = timedelta(0)) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone(offset)).isoformat(timespec="milliseconds")


def _fill(data_dir) -> tuple[int, dict[int, tuple[str, int]], list[int]]:
    """A stopped deployment with 30 messages and 5 rows lost: (base ms, seqs before, lost)."""
    async def run():
        dep = Deployment(log_url=f"file://{data_dir}/log", db_url=f"sqlite:///{data_dir}/messages.db",
                         config=StoreConfig(), checkpoints=data_dir / "replay")
        await dep.start()
        base = int(time.time() * 1000) - 60_000
        for i in range(30):
            await dep.send("group:ops" if i % 2 else "c2c:alice:bob", timestamp_ms=base + i * 10)
        await dep.settled()
        before = await dep.seqs()
        await dep.close()
        return base, before
    base, before = asyncio.run(run())
    lost = sorted(before)[10:15]
    with sqlite3.connect(data_dir / "messages.db") as conn:
        conn.executemany("DELETE FROM messages WHERE msg_id = ?", [(i,) for i in lost])
    return base, before, lost


def _stored(data_dir) -> dict[int, tuple[str, int]]:
    with sqlite3.connect(data_dir / "messages.db") as conn:
        return {m: (c, s) for m, c, s in conn.execute("SELECT msg_id, conversation_id, seq FROM messages")}


def test_dry_run_prints_the_plan_and_writes_nothing_then_replay_restores(cli, tmp_path):
    data = tmp_path / "flare"
    base, before, lost = _fill(data)
    since, until = _iso(base), _iso(base + 300, timedelta(hours=5, minutes=30))  # an offset parses exactly
    args = ["replay", "--data-dir", str(data), "--since", since, "--until", until, "--into", "store"]

    dry = cli(*args, "--dry-run", "-o", "json")
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] and plan["plan"]["window"]["since_ms"] == base
    assert plan["plan"]["window"]["until_ms"] == base + 300
    assert sum(p["records"] for p in plan["plan"]["partitions"]) == 30
    assert all(p["stop"] == p["end"] and p["left_to_live"] == 0 for p in plan["plan"]["partitions"])
    assert plan["summary"] == {"scanned": 30, "applied": 5, "restored": 5, "appended": 0, "skipped": 25,
                               "duplicates": 0, "errors": 0}
    assert len(_stored(data)) == 25
    assert not (data / "replay").exists(), "a dry run left a checkpoint"

    table = cli(*args, "--dry-run")
    assert table.exit_code == 0
    assert "dry run: nothing written" in table.stdout and "would apply 5" in table.stdout
    assert "PARTITION" in table.stdout and "LIVE COMMITTED" in table.stdout

    real = cli(*args, "-o", "json")
    assert real.exit_code == 0, real.output
    result = json.loads(real.stdout)
    assert result["summary"]["restored"] == 5 and result["status"] == "done"
    assert _stored(data) == before
    assert json.loads((data / "replay" / f"{result['run_id']}.json").read_text())["status"] == "done"

    twice = cli(*args, "-o", "json")
    assert json.loads(twice.stdout)["summary"]["applied"] == 0 and _stored(data) == before

    resumed = cli("replay", "--data-dir", str(data), "--resume", result["run_id"], "--into", "store", "-o", "json")
    # a finished run resumed reads nothing more and reports what it did
    assert resumed.exit_code == 0 and json.loads(resumed.stdout)["summary"] == result["summary"]
    assert _stored(data) == before


def test_targets_that_do_not_exist_are_refused_by_name(cli, tmp_path):
    for target in ("search", "notification"):
        result = cli("replay", "--data-dir", str(tmp_path), "--since", "2026-12-01T00:00:00Z",
                     "--until", "2026-12-01T01:00:00Z", "--into", target)
        assert result.exit_code == 7
        assert f"--into {target}: the {target} service does not exist in Flare yet" in " ".join(result.stderr.split())
    assert not (tmp_path / "log").exists(), "a refused replay opened the deployment"


def test_bad_bounds_are_named(cli, tmp_path):
    cases = [
        (["--since", "2026-12-01T00:00:00", "--until", "2026-12-01T01:00:00Z"], "since: '2026-12-01T00:00:00' has no time zone"),
        (["--since", "2026-12-01T01:00:00Z", "--until", "2026-12-01T01:00:00Z"], "--until must be after --since"),
        (["--since", "yesterday", "--until", "2026-12-01T01:00:00Z"], "since: 'yesterday' is not an ISO 8601 time"),
        (["--until", "2026-12-01T01:00:00Z"], "--since and --until are both needed"),
    ]
    for bounds, message in cases:
        result = cli("replay", "--data-dir", str(tmp_path), "--into", "store", *bounds)
        assert result.exit_code == 3, (bounds, result.output)
        assert message in " ".join(result.stderr.split())
    missing = cli("replay", "--data-dir", str(tmp_path), "--into", "store", "--resume", "rp-nope")
    assert missing.exit_code == 7 and "no replay checkpoint rp-nope" in " ".join(missing.stderr.split())


def test_the_offline_topic_is_not_a_store_source_and_a_held_log_says_why(cli, tmp_path):
    offline = cli("replay", "--data-dir", str(tmp_path), "--since", "2026-12-01T00:00:00Z",
                  "--until", "2026-12-01T01:00:00Z", "--into", "store", "--topic", "offline")
    assert offline.exit_code == 3 and "the offline topic feeds notifications" in offline.stderr

    from services.backends.embedded.filelog import FileLog

    async def held() -> object:
        log = FileLog(tmp_path / "log", fsync=False)
        await log.start()  # what a running `flarectl up` does
        result = await asyncio.to_thread(cli, "replay", "--data-dir", str(tmp_path), "--since",
                                         "2026-12-01T00:00:00Z", "--until", "2026-12-01T01:00:00Z", "--into", "store")
        await log.close()
        return result

    result = asyncio.run(held())
    assert result.exit_code == 4
    assert "stop it, replay, start it again" in " ".join(result.stderr.split())
