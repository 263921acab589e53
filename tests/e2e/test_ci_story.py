"""The CI story of issue 11 end to end, as a pipeline runs it against a real deployment:
a fresh database -> `flarectl migrate up` -> traffic through the gateway -> `archive run` ->
`archive verify` -> a new device syncs the archived history -> `check consistency` exits 0;
then one tampered object -> `verify` and `check` exit 1 naming its chunk.

SQLite + a directory (embedded), and a real PostgreSQL + the real S3 server."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from services.backends.registry import open_objectstore
from services.common.config import load_config
from services.common.model import c2c_conversation_id
from services.backends.messagedb.migrations import load_migrations
from services.wiring.monolith import Monolith
from tests.integration.archive_env import s3_server

from .protocol_helpers import send_one_stored
from .wsclient import WsClient

ROOT = Path(__file__).resolve().parents[2]


async def flarectl(*args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "flarectl.main", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=180, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(Path.home())})


def _config(request, tmp_path: Path, shape: str) -> tuple[Path, str, str]:
    data = tmp_path / "flare"
    lines = [f'data_dir = "{data}"', "[backends]"]
    if shape == "postgres":
        db_url = request.getfixturevalue("postgres_server").url_for(f"story_{uuid.uuid4().hex[:8]}")
        objects_url = s3_server(request).url_for(f"story-{uuid.uuid4().hex[:8]}")
        lines += [f'messagedb = "{db_url}"', f'objectstore = "{objects_url}"']
    else:
        db_url, objects_url = f"sqlite:///{data.resolve()}/messages.db", f"file://{data.resolve()}/objects"
    path = tmp_path / "flare.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, db_url, objects_url


async def _monolith(config: Path) -> Monolith:
    cfg = load_config(config, environ={})
    cfg.gateway.port = cfg.admin.port = cfg.controlplane.port = 0
    monolith = Monolith(cfg)
    await monolith.start()
    return monolith


@pytest.mark.parametrize("shape", ["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
async def test_ci_migrate_traffic_archive_verify_sync_check(request, tmp_path, shape):
    config, _db_url, objects_url = _config(request, tmp_path, shape)
    up = await flarectl("migrate", "up", "--config", str(config), "--create-database", "-o", "json")
    assert up.returncode == 0, up.stderr
    shipped = len(load_migrations("postgres" if shape == "postgres" else "sqlite"))
    assert [r["success"] for r in json.loads(up.stdout)["applied"]] == [True] * shipped

    # traffic: a 1:1 chat and a group, one recalled message
    monolith = await _monolith(config)
    clients = []
    try:
        secret = monolith.token_secret
        alice = await WsClient(monolith.gateway_url, secret, "alice").connect()
        bob = await WsClient(monolith.gateway_url, secret, "bob").connect()
        clients += [alice, bob]
        c2c = c2c_conversation_id("alice", "bob")
        await alice.send_frame({"type": "group_create", "group_id": "team", "members": ["alice", "bob", "carol"]})
        await alice.wait_for(lambda f: f["type"] == "group_created")
        # One at a time until stored: on a loaded machine a burst may be answered `busy`
        # (docs/protocol.md §12), and the seqs below must follow the send order.
        for i in range(15):
            await send_one_stored((alice, bob)[i % 2], f"你好 hello {i}", conversation_id=c2c)
        for i in range(10):
            await send_one_stored(alice, f"团队 team {i}", conversation_id="group:team")
        seen = await bob.wait_count(lambda f: f.get("type") == "message", 25)
        recalled = next(m for m in seen if m["conversation_id"] == c2c and m["seq"] == 3)
        await alice.send_frame({"type": "recall", "msg_id": recalled["msg_id"]})
        await bob.wait_for(lambda f: f.get("type") == "event" and f.get("sync_type") == "recall")
    finally:
        for c in clients:
            await c.close()
        await monolith.stop()

    await asyncio.sleep(0.05)
    # The policy CI would pass: nothing is "hot" here, so a run may take everything up to now.
    policy = tmp_path / "tiering.yaml"
    policy.write_text("kind: tiering\nspec:\n  hot_cold_threshold: 1ms\n  compression: zstd\n")
    run = await flarectl("archive", "run", "--config", str(config), "--policy", str(policy), "--older-than", "1ms",
                         "--chunk-rows", "10", "-o", "json")
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["rows_archived"] == 25 == summary["rows_deleted_from_l1"] and len(summary["chunks"]) == 3
    verify = await flarectl("archive", "verify", "--config", str(config), "--all")
    assert verify.returncode == 0 and verify.stdout.strip() == "3 of 3 chunk(s) verified, 25 rows", verify.stdout

    # A device that never synced asks for everything: it comes from L2, in seq order, with the recall event.
    monolith = await _monolith(config)
    try:
        tablet = await WsClient(monolith.gateway_url, monolith.token_secret, "bob", "tablet").connect()
        first = await tablet.sync()
        got = await tablet.sync_all()
        await tablet.close()
    finally:
        await monolith.stop()
    assert [m["seq"] for m in got[c2c]] == list(range(1, 16))
    assert [m["seq"] for m in got["group:team"]] == list(range(1, 11))
    assert {m["msg_id"] for m in got[c2c] + got["group:team"]} == {m["msg_id"] for m in seen}
    assert [m["body"] for m in got["group:team"]] == [f"团队 team {i}" for i in range(10)]
    assert next(m for m in got[c2c] if m["seq"] == 3)["flags"] & 1  # recalled before it was archived
    events = first["conversations"][c2c]["events"]
    assert [(e["sync_type"], e["msg_id"]) for e in events] == [("recall", recalled["msg_id"])]

    check = await flarectl("check", "consistency", "--config", str(config), "-o", "json")
    report = json.loads(check.stdout)
    assert check.returncode == 0 and report["findings"] == [], report
    assert report["checked"]["l2_rows"] == 25 and report["checked"]["log_records"] >= 25 and not report["skipped"]

    # One tampered object: both jobs fail and name its chunk.
    chunks = json.loads((await flarectl("archive", "list", "--config", str(config), "-o", "json")).stdout)["chunks"]
    victim = chunks[1]
    store = open_objectstore(objects_url)
    await store.start()
    data = bytearray(await store.get(victim["object_key"]))
    data[len(data) // 2] ^= 0x55
    await store.put(victim["object_key"], bytes(data))
    await store.close()
    verify = await flarectl("archive", "verify", "--config", str(config), "--all")
    assert verify.returncode == 1 and f"MISMATCH chunk {victim['chunk_id']}" in verify.stdout
    check = await flarectl("check", "consistency", "--config", str(config), "-o", "json")
    report = json.loads(check.stdout)
    assert check.returncode == 1
    assert [(f["kind"], f["ids"]["chunk_id"]) for f in report["findings"]] == [("l2_object_mismatch", victim["chunk_id"])]
