"""`flarectl archive plan/run/verify/restore/list` on SQLite + a directory and on a real
PostgreSQL + the real S3 server: exit codes, -o json, and what each run leaves behind."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.common.model import now_ms

from .archive_env import DAY_MS, make_env, traffic


@pytest.fixture
def cli(cli):
    """The shared runner (tests/cli_runner.py), taking paths and numbers as arguments too."""
    return lambda *args: cli(*(str(a) for a in args))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.servers)])
def env(request, tmp_path):
    made = make_env(request.param, request, tmp_path)

    async def seed():
        await made.open()
        await made.db.insert_messages(traffic({"group:a": 30, "c2c:a:b": 10}, start_ms=now_ms() - 40 * DAY_MS)
                                      + traffic({"group:a": 0, "group:new": 3}, start_ms=now_ms(), prefix="n"))
        await made.close()

    asyncio.run(seed())
    made.args = ("--url", made.db_url, "--objects", made.objects_url)
    return made


def _json(result) -> dict:
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def test_plan_counts_what_a_run_then_moves(cli, env):
    plan = _json(cli("archive", "plan", *env.args, "-o", "json"))  # default cutoff: l1_retention, 30 days
    assert [(c["conversation_id"], c["min_seq"], c["max_seq"], c["rows"]) for c in plan["conversations"]] == [
        ("c2c:a:b", 1, 10, 10), ("group:a", 1, 30, 30)]
    assert plan["rows"] == 40 and plan["codec"] == "zstd" and 0 < plan["estimated_bytes"]
    human = cli("archive", "plan", *env.args)
    assert human.exit_code == 0 and "group:a" in human.stdout and "1..30" in human.stdout

    dry = _json(cli("archive", "run", *env.args, "--dry-run", "-o", "json"))
    assert dry["rows_archived"] == 40 and dry["chunks"] == []
    assert _json(cli("archive", "list", *env.args, "-o", "json"))["chunks"] == []

    done = _json(cli("archive", "run", *env.args, "--chunk-rows", "15", "--limit", "35", "-o", "json"))
    assert done["rows_archived"] == 35 == done["rows_deleted_from_l1"] and [c["rows"] for c in done["chunks"]] == [15, 15, 5]
    rest = _json(cli("archive", "run", *env.args, "-o", "json"))
    assert rest["rows_archived"] == 5
    nothing = cli("archive", "run", *env.args)
    assert nothing.exit_code == 0 and nothing.stdout.strip() == "nothing to archive"
    listed = _json(cli("archive", "list", *env.args, "-o", "json"))["chunks"]
    assert [c["rows"] for c in listed] == [15, 15, 5, 5] and {c["state"] for c in listed} == {"archived"}
    assert all(c["object_key"].startswith("archive/chunks/") for c in listed)


def test_verify_exits_1_naming_a_tampered_chunk(cli, env):
    _json(cli("archive", "run", *env.args, "--chunk-rows", "20", "-o", "json"))
    ok = cli("archive", "verify", *env.args, "--all")
    assert ok.exit_code == 0 and ok.stdout.strip() == "2 of 2 chunk(s) verified, 40 rows"
    first, second = _json(cli("archive", "list", *env.args, "-o", "json"))["chunks"]

    async def tamper():
        await env.open()
        data = bytearray(await env.objects.get(second["object_key"]))
        data[100] ^= 0x01
        await env.objects.put(second["object_key"], bytes(data))
        await env.close()

    asyncio.run(tamper())
    bad = cli("archive", "verify", *env.args, "--all", "-o", "json")
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    assert report["failed"] == [second["chunk_id"]]
    assert cli("archive", "verify", *env.args, "--chunk", first["chunk_id"]).exit_code == 0
    one = cli("archive", "verify", *env.args, "--chunk", second["chunk_id"])
    assert one.exit_code == 1 and f"MISMATCH chunk {second['chunk_id']}: sha256" in one.stdout
    assert cli("archive", "verify", *env.args).exit_code == 2  # neither --all nor --chunk
    assert cli("archive", "verify", *env.args, "--chunk", "nope").exit_code == 7


def test_restore_is_idempotent_and_needs_one_target(cli, env):
    _json(cli("archive", "run", *env.args, "-o", "json"))
    (chunk,) = _json(cli("archive", "list", *env.args, "-o", "json"))["chunks"]
    assert _json(cli("archive", "restore", *env.args, "--conversation", "c2c:a:b", "-o", "json"))["rows"] == 10
    assert _json(cli("archive", "restore", *env.args, "--conversation", "c2c:a:b", "-o", "json"))["rows"] == 0
    assert _json(cli("archive", "restore", *env.args, "--chunk", chunk["chunk_id"], "-o", "json"))["rows"] == 30
    again = cli("archive", "restore", *env.args, "--chunk", chunk["chunk_id"])
    assert again.exit_code == 0 and again.stdout.strip() == "restored 0 rows from 0 chunk(s)"
    assert _json(cli("archive", "list", *env.args, "-o", "json"))["chunks"][0]["state"] == "restored"
    assert cli("archive", "restore", *env.args).exit_code == 2
    plan = _json(cli("archive", "plan", *env.args, "-o", "json"))
    assert plan["rows"] == 40  # back in L1, archivable again


def test_the_tiering_document_sets_codec_and_prefix(cli, env, tmp_path):
    policy = tmp_path / "tiering.yaml"
    policy.write_text("kind: tiering\nspec:\n  compression: snappy\n  l2_target: objectstore://cold/flare/\n"
                      "  l1_retention: 35d\n  hot_cold_threshold: 7d\n")
    plan = _json(cli("archive", "plan", *env.args, "--policy", policy, "-o", "json"))
    assert plan["codec"] == "snappy" and plan["rows"] == 40  # 40 days old > 35 days
    done = _json(cli("archive", "run", *env.args, "--policy", policy, "-o", "json"))
    assert done["codec"] == "snappy" and done["rows_archived"] == 40
    (chunk,) = _json(cli("archive", "list", *env.args, "--policy", policy, "-o", "json"))["chunks"]
    assert chunk["object_key"].startswith("cold/flare/chunks/") and chunk["codec"] == "snappy"
    assert cli("archive", "verify", *env.args, "--policy", policy, "--all").exit_code == 0
    hot = cli("archive", "run", *env.args, "--older-than", "1d")  # the default policy keeps 7 days hot
    assert hot.exit_code == 3 and "hot_cold_threshold is 604800s" in hot.stderr
    wrong = tmp_path / "push.yaml"
    wrong.write_text("kind: push\nspec: {}\n")
    assert cli("archive", "plan", *env.args, "--policy", wrong).exit_code == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: tiering\nspec:\n  compression: gzip\n")
    refused = cli("archive", "plan", *env.args, "--policy", bad)
    assert refused.exit_code == 3 and "compression" in refused.stderr
