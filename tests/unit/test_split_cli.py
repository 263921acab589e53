"""`flarectl up --split` / `flarectl down` without servers: refusals and the state file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from services.common.config import load_config
from services.wiring.split import SplitDeployment, live_processes, stop_from_state


def test_split_needs_a_config_with_production_backends(cli, tmp_path):
    result = cli("up", "--split")
    assert result.exit_code == 2 and "--split needs --config FILE" in result.stderr
    embedded = tmp_path / "flare.toml"
    embedded.write_text(f'data_dir = "{tmp_path}"\n')
    result = cli("up", "--split", "--config", str(embedded))
    assert result.exit_code == 3 and "needs production backends" in result.stderr


def test_down_without_a_deployment_is_not_found(cli, tmp_path):
    result = cli("down", "--data-dir", str(tmp_path))
    assert result.exit_code == 7 and "no split deployment recorded" in result.stderr


def test_the_plan_gives_every_gateway_its_own_ports_and_node_id(tmp_path):
    config = tmp_path / "flare.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n[split]\ngateways = 3\nrouters = 2\nbase_port = 20000\n')
    deployment = SplitDeployment(load_config(config), config)
    deployment._plan()
    assert [p.instance_id for p in deployment.processes] == [
        "controlplane", "session-1", "filter-1", "store-1", "sync-1", "router-1", "router-2",
        "gateway-1", "gateway-2", "gateway-3"]
    ports = [port for p in deployment.processes for port in p.ports.values()]
    assert len(ports) == len(set(ports)) and min(ports) == 20000
    assert deployment.gateway_urls == ["ws://127.0.0.1:20013/ws", "ws://127.0.0.1:20016/ws", "ws://127.0.0.1:20019/ws"]
    node_ids = [p.argv[p.argv.index("--node-id") + 1] for p in deployment.instances("gateway")]
    assert node_ids == ["1", "2", "3"]


def test_down_stops_what_the_state_file_lists_and_only_flare_processes(tmp_path):
    # A stand-in whose command line looks like a Flare instance; `sleep` is a stranger.
    flare_like = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "services.store"],
                                  start_new_session=True)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (tmp_path / "split.json").write_text(json.dumps({"stop_timeout_s": 5, "processes": [
            {"service": "store", "instance_id": "store-1", "pid": flare_like.pid},
            {"service": "router", "instance_id": "router-1", "pid": stranger.pid},
        ]}))
        assert [p["instance_id"] for p in live_processes(tmp_path)] == ["store-1"]
        assert stop_from_state(tmp_path) == ["store-1"]
        assert flare_like.wait(5) is not None
        assert stranger.poll() is None
        assert not (tmp_path / "split.json").exists()
    finally:
        stranger.kill()
        flare_like.kill()
        stranger.wait()
        flare_like.wait()
