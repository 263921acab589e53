"""rolling-restart on a real split deployment (Kafka, PostgreSQL, Redis, etcd, S3) under chat load:
the stores restart one at a time, each healthy and SYNCED before the next, and the clients
lose nothing (every STORED message delivered, seqs gap-free)."""

from __future__ import annotations

import asyncio
import json
import os
import sys

import pytest
import yaml

from services.wiring.split import read_state, stop_from_state

from .cp_harness import ROOT
from .split_harness import SERVER_KINDS, split_on
from .split_load import ChatLoad

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.timeout(300)]


async def _flarectl(split, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLARE_CONTROLPLANE": split.deployment.controlplane_address,
           "FLARE_TOKEN": split.admin_token, "FLARECTL_CONFIG": "/nonexistent", "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "flarectl.main", *args, env=env, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


def _store_pids(data_dir) -> dict[str, int]:
    return {p["instance_id"]: p["pid"] for p in read_state(data_dir)["processes"] if p["service"] == "store"}


async def _synced_tiering(split, version: int) -> None:
    for _ in range(100):
        code, out, _ = await _flarectl(split, "status", "-o", "json")
        kinds = [k for i in json.loads(out)["instances"] if i["service"] == "store" for k in i["kinds"]
                 if k["kind"] == "tiering"]
        if len(kinds) == 2 and all(k["state"] == "SYNCED" and k["applied_version"] == version for k in kinds):
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"stores did not sync tiering v{version}: {out}")


async def test_stores_restart_one_at_a_time_under_load_and_nothing_is_lost(request, tmp_path):
    servers = {kind: request.getfixturevalue(f"{kind}_server") for kind in SERVER_KINDS}
    async with split_on(tmp_path, servers, gateways=1, routers=1, stores=2) as split:
        data_dir = split.deployment.data_dir
        try:
            tiering = tmp_path / "tiering.yaml"
            tiering.write_text(yaml.safe_dump({"kind": "tiering", "spec": {"l0_ttl": "1h"}}))
            code, out, err = await _flarectl(split, "config", "apply", "-f", str(tiering))
            assert code == 0, err
            await _synced_tiering(split, 1)
            pids = _store_pids(data_dir)
            audit = tmp_path / "pb"

            code, out, err = await _flarectl(split, "playbook", "run", "rolling-restart", "--dry-run", "-o", "json",
                                             "--data-dir", str(audit), "--var", f"data_dir={data_dir}")
            assert code == 0, err
            dry = json.loads(out)
            assert [(s["name"], s["state"]) for s in dry["steps"]] == [
                ("instances", "done"), ("all-synced-before", "done"), ("approve", "would"), ("each", "done"),
                ("before[store-1]", "done"), ("restart[store-1]", "would"), ("healthy-and-synced[store-1]", "would"),
                ("before[store-2]", "done"), ("restart[store-2]", "would"), ("healthy-and-synced[store-2]", "would")]
            assert _store_pids(data_dir) == pids, "a dry run restarted something"

            load = ChatLoad(split.deployment.gateway_urls, split.deployment.secret)
            await load.connect()
            try:
                playbook = asyncio.create_task(_flarectl(
                    split, "playbook", "run", "rolling-restart", "--yes", "-o", "json", "--data-dir", str(audit),
                    "--var", f"data_dir={data_dir}"))
                await load.run(duration_s=6.0)
                code, out, err = await playbook
                assert code == 0, err
                report = await load.verify()
            finally:
                await load.close()
            print(report.summary())
            assert len(report.stored) > 50, report.summary()
            run = json.loads(out)
            assert run["status"] == "done"
            assert [s["name"] for s in run["steps"] if s["name"].startswith("restart")] == [
                "restart[store-1]", "restart[store-2]"]
            restarted = _store_pids(data_dir)
            assert all(restarted[i] != pids[i] for i in pids), (pids, restarted)
            # one at a time: store-2 went down only after store-1 was back, healthy and SYNCED
            steps = {s["name"]: s for s in run["steps"]}
            assert steps["healthy-and-synced[store-1]"]["finished_at"] < steps["restart[store-2]"]["finished_at"]
            await _synced_tiering(split, 1)
        finally:
            stop_from_state(data_dir)  # the restarted processes are split.json's, not the harness's children
