"""The admin endpoint serves Prometheus metrics and health; flarectl's own commands behave."""

from __future__ import annotations

import httpx
import pytest

from flarectl.exitcodes import ExitCode
from services.common.auth import verify_token


@pytest.mark.monolith_only  # reads the monolith's single admin endpoint
async def test_metrics_and_health_reflect_live_traffic(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    await alice.send("count me", to="bob")
    await bob.wait_for(lambda f: f.get("type") == "message")
    await alice.send_raw("{broken")
    await alice.wait_for(lambda f: f.get("type") == "error")
    async with httpx.AsyncClient(base_url=flare.monolith.admin_url) as http:
        metrics = (await http.get("/metrics")).text
        health = (await http.get("/healthz")).json()
        missing = await http.get("/nope")
    for name in ("flare_connections", "flare_messages_in_total", "flare_messages_out_total",
                 "flare_ack_latency_seconds_bucket", "flare_dedup_hits_total", "flare_frame_errors_total",
                 "flare_store_batch_size_bucket", "flare_filter_checks_total"):
        assert name in metrics, name
    assert 'flare_frame_errors_total{code="bad_frame"}' in metrics
    assert health["status"] == "ok" and health["connections"] == 2 and health["persisted"] >= 1
    assert missing.status_code == 404


def test_token_issue_mints_a_token_the_server_accepts(cli, tmp_path):
    (tmp_path / "token.secret").write_bytes(b"s3cret")
    result = cli("token", "issue", "alice", "--ttl", "1h", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    claims = verify_token(b"s3cret", result.output.strip(), audience="client")
    assert claims.subject == "alice" and claims.expires_at - int(claims.issued_at) == 3600


def test_token_issue_errors_are_named(cli, tmp_path):
    missing = cli("token", "issue", "alice", "--data-dir", str(tmp_path))
    assert missing.exit_code == ExitCode.NOT_FOUND and "no token secret" in missing.output
    (tmp_path / "token.secret").write_bytes(b"s3cret")
    bad_ttl = cli("token", "issue", "alice", "--ttl", "soon", "--data-dir", str(tmp_path))
    assert bad_ttl.exit_code == ExitCode.INVALID and "not a duration" in bad_ttl.output
    bad_user = cli("token", "issue", "a:b", "--data-dir", str(tmp_path))
    assert bad_user.exit_code == ExitCode.INVALID


def test_chat_refuses_ambiguous_target(cli, tmp_path):
    result = cli("chat", "alice", "--data-dir", str(tmp_path))
    assert result.exit_code == ExitCode.USAGE and "exactly one of --to or --group" in result.output


@pytest.mark.monolith_only  # inspects the in-process filter's rules
async def test_flarectl_config_apply_reaches_the_running_monolith(cli, flare, tmp_path, monkeypatch):
    """The SRE path: a rules file applied with flarectl blocks the next message."""
    import asyncio

    rules = tmp_path / "rules.yaml"
    rules.write_text("kind: filter-rules\nspec:\n  sensitive_words: [forbidden-thing]\n")
    token = (flare.monolith.data_dir / "admin.token").read_text().strip()
    env = {"FLARE_CONTROLPLANE": flare.monolith.controlplane_address, "FLARE_TOKEN": token}
    dry = await asyncio.to_thread(cli, "config", "apply", "-f", str(rules), "--dry-run", env=env)
    assert dry.exit_code == 0, dry.output
    assert flare.monolith.filter.rules.sensitive_words == [] or "forbidden-thing" not in str(
        flare.monolith.filter.rules)
    applied = await asyncio.to_thread(cli, "config", "apply", "-f", str(rules), env=env)
    assert applied.exit_code == 0, applied.output
    alice = await flare.client("alice")
    await flare.client("bob")
    for _ in range(100):
        if "forbidden-thing" in str(flare.monolith.filter.rules):
            break
        await asyncio.sleep(0.05)
    cmid = await alice.send("a forbidden-thing here", to="bob")
    error = await alice.wait_for(lambda f: f.get("type") == "error" and f.get("ref") == cmid)
    assert error["code"] == "rejected"
    status = await asyncio.to_thread(cli, "status", "-o", "json", env=env)
    assert status.exit_code == 0, status.output
    assert "SYNCED" in status.output
