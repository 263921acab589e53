"""flarectl as a new on-call user meets it, on a running monolith: status lists every instance
(gateways with their own id) in 80 columns, captured values are never wrapped in a pipe,
`config get > f && config apply -f f` round-trips, `up` on a taken port is one line and 4."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
import yaml

pytestmark = [pytest.mark.monolith_only, pytest.mark.timeout(120)]

NO_TERMINAL = {"COLUMNS": None}  # a pipe: no width at all


def _env(flare, **more):
    token = (flare.monolith.data_dir / "admin.token").read_text().strip()
    return {"FLARE_CONTROLPLANE": flare.monolith.controlplane_address, "FLARE_TOKEN": token,
            "FLARECTL_CONFIG": "/nonexistent", **more}


async def test_status_lists_every_instance_with_its_own_id_in_80_columns(flare, cli):
    alice = await flare.client("alice")
    await flare.client("bob")
    for i in range(5):
        await alice.send(f"hello {i}", to="bob")
    env = _env(flare, COLUMNS="80")
    for _ in range(60):  # the first summaries arrive within a second or two
        result = await asyncio.to_thread(cli, "status", "-o", "json", env=env)
        rows = {r["id"]: r for r in json.loads(result.stdout)["instances"]}
        if rows.get("gateway/gw-1", {}).get("connections") == 2:
            break
        await asyncio.sleep(0.1)
    assert sorted(rows) == ["filter/filter-1", "gateway/gw-1", "router/router-1", "session/session-1",
                            "store/store-1"]
    assert all(r["health"] == "UP" for r in rows.values())
    assert rows["gateway/gw-1"]["connections"] == 2
    table = await asyncio.to_thread(cli, "status", env=env)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["SERVICE", "INSTANCE", "HEALTH", "MSG/s", "P99ms", "LOAD", "CONFIG"]
    assert max(len(line.rstrip()) for line in lines) <= 80, table.stdout
    gateway = next(line for line in lines if line.startswith("gateway"))
    assert gateway.split()[:3] == ["gateway", "gw-1", "UP"] and "2 conn" in gateway


async def test_captured_values_are_never_wrapped_without_a_terminal(flare, cli):
    env = _env(flare, **NO_TERMINAL)
    issued = await asyncio.to_thread(cli, "auth", "token", "issue", "--role", "operator", env=env)
    assert issued.exit_code == 0, issued.output
    assert len(issued.stdout.splitlines()) == 1 and len(issued.stdout.strip()) > 80
    client = await asyncio.to_thread(cli, "token", "issue", "alice-with-a-long-user-name-for-wrapping",
                                     "--data-dir", str(flare.monolith.data_dir), env=env)
    assert client.exit_code == 0 and len(client.stdout.splitlines()) == 1 and len(client.stdout) > 80
    # the operator token just issued works for the next command (what FLARE_TOKEN=$(…) does)
    status = await asyncio.to_thread(cli, "status", "-o", "json", env={**env, "FLARE_TOKEN": issued.stdout.strip()})
    assert status.exit_code == 0, status.output


async def test_config_get_into_a_file_applies_back_unchanged(flare, cli, tmp_path):
    env = _env(flare, **NO_TERMINAL)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"kind": "filter-rules", "spec": {
        "sensitive_words": ["a-rather-long-sensitive-word-" + "x" * 30, {"word": "傻瓜", "action": "mask"}],
        "spam_rules": [{"type": "frequency", "limit": 10, "window": 60}]}}))
    assert (await asyncio.to_thread(cli, "config", "apply", "-f", str(rules), "-m", "a comment " * 10,
                                    env=env)).exit_code == 0
    got = await asyncio.to_thread(cli, "config", "get", "filter-rules", env=env)
    assert got.exit_code == 0 and got.stdout.startswith("# filter-rules v1 (")
    assert len(got.stdout.splitlines()[0]) > 80  # the header comment stays one line
    saved = tmp_path / "saved.yaml"
    saved.write_text(got.stdout)
    again = await asyncio.to_thread(cli, "config", "apply", "-f", str(saved), env=env)
    assert again.exit_code == 0, again.output
    assert again.stdout == "filter-rules unchanged (v1)\n"


async def test_status_without_a_token_says_where_tokens_come_from(flare, cli):
    env = {"FLARE_CONTROLPLANE": flare.monolith.controlplane_address, "FLARE_TOKEN": "",
           "FLARECTL_CONFIG": "/nonexistent", "FLARE_DATA_DIR": "/nonexistent-dir"}
    result = await asyncio.to_thread(cli, "status", env=env)
    assert result.exit_code == 5
    assert "FLARE_TOKEN" in result.stderr and "./.flare/admin.token" in result.stderr and "context" in result.stderr


def test_up_on_a_taken_port_is_one_line_exit_4_and_creates_nothing(cli, tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        data_dir = tmp_path / "never"
        result = cli("up", "--data-dir", str(data_dir), "--port", "0", "--admin-port", "0",
                     "--controlplane-port", str(port))
    assert result.exit_code == 4
    assert result.stderr.splitlines() == [
        f"error: port {port} (control plane, 127.0.0.1) is already in use; "
        "pick another with --port/--admin-port/--controlplane-port"]
    assert not data_dir.exists()


def test_up_with_an_unreachable_backend_exits_4(cli, tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()[1]  # bound, never listening: connection refused
        result = cli("up", "--data-dir", str(tmp_path / "d"), "--port", "0", "--admin-port", "0",
                     "--controlplane-port", "0", env={"FLARE_BACKENDS__CACHE": f"redis://127.0.0.1:{dead}"})
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output and "Redis" in result.stderr
