"""The data playbooks on real deployments: replay-after-outage on Kafka + PostgreSQL with a live
store taking traffic, migrate-with-checks and archive-cold-data on a real PostgreSQL and on the
embedded SQLite data dir. flarectl runs as its own process, as an SRE would run it."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import time
import uuid

import pytest

from services.replay import format_utc_ms

from .cp_harness import ROOT
from .replay_harness import Deployment, assert_consistent, unique_config

pytestmark = [pytest.mark.timeout(300)]

# migrate, archive and check consistency are issue 11's (branch messagedb): until they are in
# this tree the playbooks that call them cannot run here. replay-after-outage needs `check`.
_HAVE_STORAGE_COMMANDS = importlib.util.find_spec("flarectl.commands.check") is not None
needs_issue_11 = pytest.mark.skipif(not _HAVE_STORAGE_COMMANDS,
                                    reason="needs flarectl migrate/archive/check consistency (issue 11, messagedb)")


async def flarectl(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict | None, str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), "FLARECTL_CONFIG": "/nonexistent", "NO_COLOR": "1", **(env or {})}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "flarectl.main", *args, env=full, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    try:
        data = json.loads(out)
    except json.JSONDecodeError:
        data = None
    return proc.returncode, data, err.decode()


@needs_issue_11
@pytest.mark.servers
async def test_replay_after_outage_puts_back_lost_rows_under_traffic(kafka_server, postgres_server, tmp_path):
    db_url = await asyncio.to_thread(postgres_server.create_database, f"pb_{uuid.uuid4().hex[:10]}")
    dep = Deployment(log_url=kafka_server.url, db_url=db_url, config=unique_config(), checkpoints=tmp_path / "x")
    await dep.start()
    env = {"FLARE_BACKENDS__LOG": kafka_server.url, "FLARE_BACKENDS__MESSAGEDB": db_url,
           "FLARE_STORE__TOPIC": dep.config.topic, "FLARE_STORE__CONSUMER_GROUP": dep.config.consumer_group,
           "FLARE_STORE__PARTITIONS": str(dep.config.partitions)}
    data_dir = tmp_path / "flare"
    try:
        base = int(time.time() * 1000) - 60_000
        conversations = ["group:a", "group:b", "c2c:alice:bob"]
        for i in range(30):
            for c, conversation in enumerate(conversations):
                await dep.send(conversation, timestamp_ms=base + i * 100 + c)
        await dep.settled()
        before = await dep.seqs()
        lost = [i for i, (c, s) in before.items() if (c == "group:a" and 8 <= s <= 14) or (c == "group:b" and s > 26)]
        await dep.delete(lost)
        for conversation in conversations:
            await dep.send(conversation)
        await dep.settled()

        code, found, err = await flarectl("check", "consistency", "--data-dir", str(data_dir), "-o", "json", env=env)
        assert code == 1 and not found["ok"], err  # the loss is visible before the replay

        since, until = format_utc_ms(base), format_utc_ms(base + 3000)
        args = ["playbook", "run", "replay-after-outage", "--var", f"since={since}", "--var", f"until={until}",
                "--var", f"data_dir={data_dir}", "-o", "json"]
        code, dry, err = await flarectl(*args, "--dry-run", env=env)
        assert code == 0, err
        assert [s["state"] for s in dry["steps"]] == ["done", "would", "would", "would"]
        assert dry["captured"]["to_apply"] == str(len(lost))
        assert len(await dep.seqs()) == 93 - len(lost), "the dry run wrote something"

        async def traffic() -> None:
            for _ in range(10):
                for conversation in conversations:
                    await dep.send(conversation)
                await asyncio.sleep(0.05)

        live = asyncio.create_task(traffic())
        code, run, err = await flarectl(*args, "--yes", env=env)
        await live
        assert code == 0, (err, run)
        assert run["status"] == "done" and run["captured"]["applied"] == str(len(lost))
        assert [s["state"] for s in run["steps"]] == ["done"] * 4
        await dep.settled()
        after = await dep.seqs()
        assert_consistent(after)
        assert {i: after[i] for i in before} == before
        assert len(after) == 90 + 3 + 30

        code, again, err = await flarectl(*args, "--yes", env=env)
        assert code == 0 and again["captured"]["to_apply"] == "0" and again["captured"]["applied"] == "0", err
        assert await dep.seqs() == after
    finally:
        await dep.close()


def _url_env(kind: str, request, tmp_path) -> dict[str, str]:
    if kind == "sqlite":
        return {}
    server = request.getfixturevalue("postgres_server")
    return {"FLARE_BACKENDS__MESSAGEDB": server.create_database(f"pb_{uuid.uuid4().hex[:10]}")}


@needs_issue_11
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
async def test_migrate_with_checks_migrates_a_fresh_database_and_dry_run_changes_nothing(kind, request, tmp_path):
    env = await asyncio.to_thread(_url_env, kind, request, tmp_path)
    data_dir = tmp_path / "flare"
    args = ["playbook", "run", "migrate-with-checks", "--var", f"data_dir={data_dir}", "-o", "json"]
    status = ["migrate", "status", "--data-dir", str(data_dir), "-o", "json"]
    code, fresh, err = await flarectl(*status, env=env)
    assert code == 0 and not fresh["up_to_date"] and fresh["pending"], err

    code, dry, err = await flarectl(*args, "--dry-run", env=env)
    assert code == 0, err
    assert [s["state"] for s in dry["steps"]] == ["done", "done", "done", "would", "would", "would"]
    code, still, err = await flarectl(*status, env=env)
    assert still == fresh, "the dry run migrated something"

    code, stopped, err = await flarectl(*args, env=env)  # no terminal, no --yes: stops at the gate
    assert code == 9 and stopped["status"] == "awaiting-approval"
    code, run, err = await flarectl("playbook", "run", "migrate-with-checks", "--resume", stopped["run_id"], "--yes",
                                    "-o", "json", env=env)
    assert code == 0, err
    assert run["status"] == "done" and run["captured"]["pending"] == str(len(fresh["pending"]))
    code, done, err = await flarectl(*status, env=env)
    assert done["up_to_date"] and not done["pending"] and done["current_version"] == done["latest_version"]

    code, again, err = await flarectl(*args, "--yes", env=env)  # already up to date: still green
    assert code == 0 and again["captured"]["pending"] == "0", err


@needs_issue_11
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
async def test_archive_cold_data_moves_old_messages_verified_and_consistent(kind, request, tmp_path):
    from services.common.model import now_ms

    from .archive_env import DAY_MS, make_env, traffic

    made = await asyncio.to_thread(make_env, kind, request, tmp_path)
    if kind == "sqlite":  # the embedded data dir's own files
        made.db_url = f"sqlite:///{tmp_path / 'flare' / 'messages.db'}"
        made.objects_url = f"file://{tmp_path / 'flare' / 'objects'}"
        (tmp_path / "flare").mkdir()
    env = {"FLARE_BACKENDS__MESSAGEDB": made.db_url, "FLARE_BACKENDS__OBJECTSTORE": made.objects_url}
    await made.open()
    await made.db.insert_messages(traffic({"group:old": 30, "c2c:a:b": 10}, start_ms=now_ms() - 40 * DAY_MS)
                                  + traffic({"group:new": 5}, start_ms=now_ms(), prefix="n"))
    for group in ("group:old", "group:new"):  # members, as the live path records them
        await made.db.add_members(group, ["user0", "user1", "user2"])
    await made.db.add_members("c2c:a:b", ["a", "b"])
    await made.close()
    data_dir = tmp_path / "flare"
    args = ["playbook", "run", "archive-cold-data", "--var", f"data_dir={data_dir}", "-o", "json"]
    listing = ["archive", "list", "--data-dir", str(data_dir), "-o", "json"]

    code, dry, err = await flarectl(*args, "--dry-run", env=env)
    assert code == 0, err
    assert [s["state"] for s in dry["steps"]] == ["done", "would", "would", "would", "would"]
    assert dry["captured"]["rows"] == "40"
    assert (await flarectl(*listing, env=env))[1]["chunks"] == [], "the dry run archived something"

    code, run, err = await flarectl(*args, "--yes", env=env)
    if code:  # say why: the consistency check's own findings
        findings = (await flarectl("check", "consistency", "--data-dir", str(data_dir), "-o", "json", env=env))[1]
        raise AssertionError(f"{[s['result'] for s in run['steps']]}\n{findings}")
    assert run["status"] == "done" and [s["state"] for s in run["steps"]] == ["done"] * 5
    chunks = (await flarectl(*listing, env=env))[1]["chunks"]
    assert sum(c["rows"] for c in chunks) == 40 and {c["state"] for c in chunks} == {"archived"}
    code, plan, err = await flarectl("archive", "plan", "--data-dir", str(data_dir), "-o", "json", env=env)
    assert plan["rows"] == 0
