"""The control plane end to end: a daemon process on real etcd, filter instances as separate
processes, flarectl through typer's CliRunner, etcdctl as the independent client."""

from __future__ import annotations

import json

import pytest
import yaml

from services.common.auth import issue_token

from .cp_harness import check, flarectl, namespace_url, start_daemon, start_instance, status_states, wait_until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(120)]


def _write(tmp_path, name: str, spec: dict, kind: str = "filter-rules"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"kind": kind, "spec": spec}))
    return str(path)


@pytest.fixture
def cluster(etcd_server, tmp_path):
    """A daemon on a fresh etcd namespace; instances are started by the tests."""
    store_url = namespace_url(etcd_server.url)
    procs = []
    daemon, address, token = start_daemon(store_url, tmp_path / "cp")
    procs.append(daemon)

    class Cluster:
        def __init__(self) -> None:
            self.store_url, self.address, self.token, self.daemon = store_url, address, token, daemon
            self.prefix = "/" + store_url.rsplit("/", 1)[1]

        def instance(self, name: str, **kwargs):
            # Instances subscribe with a `service` token; an operator's may not (issue 10 item 8).
            secret = (tmp_path / "cp" / "token.secret").read_bytes().strip()
            service_token = issue_token(secret, name, role="service")
            proc, addr = start_instance(name, self.address, service_token, tmp_path / name, **kwargs)
            procs.append(proc)
            return proc, addr

        def cli(self, *args: str, token: str | None = "__admin__"):
            return flarectl(list(args), controlplane=self.address, token=self.token if token == "__admin__" else token)

        def restart_daemon(self, port: int):
            self.daemon, _, _ = start_daemon(self.store_url, tmp_path / "cp", port=port)
            procs.append(self.daemon)

        def states(self):
            return status_states(self.address, self.token)

    yield Cluster()
    for proc in reversed(procs):
        proc.stop()


def _synced(cluster, *names: str):
    def probe():
        states = cluster.states()
        return all(states.get(n, {}).get("filter-rules") == "SYNCED" for n in names) and states
    return wait_until(probe, what=f"{names} SYNCED")


def test_a_rule_applied_with_flarectl_reaches_every_instance(cluster, tmp_path):
    _, addr1 = cluster.instance("filter-1")
    _, addr2 = cluster.instance("filter-2")
    assert check(addr1, "buy cheapwatch now")["action"] == "allow"

    result = cluster.cli("config", "apply", "-f", _write(tmp_path, "rules.yaml", {"sensitive_words": ["cheapwatch"]}))
    assert result.exit_code == 0, result.output
    assert result.stdout == "filter-rules v1 applied (was v0)\n"

    _synced(cluster, "filter-1", "filter-2")
    for addr in (addr1, addr2):
        verdict = check(addr, "buy CheapWatch now")
        assert verdict == {"action": "block", "body": "buy CheapWatch now", "version": 1}

    table = cluster.cli("status")
    assert table.exit_code == 0
    lines = [line for line in table.stdout.splitlines() if "filter-" in line]
    assert len(lines) == 2 and all("SYNCED v1" in line and "UP" in line for line in lines), table.stdout

    got = cluster.cli("config", "get", "filter-rules", "-o", "json")
    assert json.loads(got.stdout)["spec"]["sensitive_words"] == [{"word": "cheapwatch"}]


def test_a_nacked_document_keeps_the_previous_version_and_rollback_restores_synced(cluster, tmp_path):
    _, addr1 = cluster.instance("filter-1")
    _, addr2 = cluster.instance("filter-2", max_words=2)
    assert cluster.cli("config", "apply", "-f", _write(tmp_path, "v1.yaml", {"sensitive_words": ["alpha"]})).exit_code == 0
    _synced(cluster, "filter-1", "filter-2")

    v2 = _write(tmp_path, "v2.yaml", {"sensitive_words": ["alpha", "beta", "gamma"]})
    assert cluster.cli("config", "apply", "-f", v2).exit_code == 0
    wait_until(lambda: cluster.states().get("filter-2", {}).get("filter-rules") == "NACKED", what="NACKED")
    _synced(cluster, "filter-1")

    status = cluster.cli("status")
    assert "NACKED v1/v2" in status.stdout
    assert "NACK filter/filter-2 filter-rules v2: sensitive_words: 3 words exceed this instance's limit of 2" in status.stdout
    # filter-2 still serves v1 and keeps answering.
    assert check(addr2, "gamma ray") == {"action": "allow", "body": "gamma ray", "version": 1}
    assert check(addr2, "alpha male")["action"] == "block"
    assert check(addr1, "gamma ray")["action"] == "block"

    rollback = cluster.cli("config", "rollback", "filter-rules", "--to", "1", "--yes")
    assert rollback.exit_code == 0, rollback.output
    assert rollback.stdout == "filter-rules rolled back to v1 as v3 (was v2)\n"
    _synced(cluster, "filter-1", "filter-2")
    assert check(addr1, "gamma ray") == {"action": "allow", "body": "gamma ray", "version": 3}

    history = cluster.cli("config", "history", "filter-rules", "-o", "json")
    assert [(e["version"], e["comment"]) for e in json.loads(history.stdout)] == [(3, "rollback to v1"), (2, ""), (1, "")]


def test_a_direct_etcdctl_write_is_validated_then_pushed_or_rejected(cluster, etcd_server, tmp_path):
    _, addr = cluster.instance("filter-1")
    assert cluster.cli("config", "apply", "-f", _write(tmp_path, "v1.yaml", {"sensitive_words": ["alpha"]})).exit_code == 0
    _synced(cluster, "filter-1")
    key = f"{cluster.prefix}/flare/config/filter-rules"

    # A valid bare spec written around the daemon: adopted as v2 and pushed.
    etcd_server.etcdctl("put", key, json.dumps({"sensitive_words": ["alpha", "delta"]}))
    wait_until(lambda: check(addr, "delta force")["action"] == "block", what="direct write pushed")
    assert check(addr, "delta force")["version"] == 2
    _synced(cluster, "filter-1")

    # An invalid one: refused, reported, and v2 keeps being served.
    etcd_server.etcdctl("put", key, json.dumps({"spec": {"sensitive_words": ["x"],
                                                         "spam_rules": [{"type": "frequency", "limit": 0, "window": 5}]}}))
    status = wait_until(lambda: (r := cluster.cli("status")) and "REJECTED" in r.stdout and r, what="rejection")
    assert "REJECTED direct write to filter-rules" in status.stdout
    assert "spec.spam_rules.0.limit: Input should be greater than 0; serving v2" in status.stdout
    assert json.loads(cluster.cli("config", "get", "filter-rules", "-o", "json").stdout)["version"] == 2
    assert check(addr, "delta force") == {"action": "block", "body": "delta force", "version": 2}
    assert cluster.states()["filter-1"]["filter-rules"] == "SYNCED"

    # The next good apply clears the rejection.
    assert cluster.cli("config", "apply", "-f", _write(tmp_path, "v3.yaml", {"sensitive_words": ["omega"]})).exit_code == 0
    assert "REJECTED" not in cluster.cli("status").stdout


def test_instances_keep_serving_without_the_control_plane_and_catch_up(cluster, tmp_path):
    proc1, addr1 = cluster.instance("filter-1")
    proc2, addr2 = cluster.instance("filter-2")
    assert cluster.cli("config", "apply", "-f", _write(tmp_path, "v1.yaml", {"sensitive_words": ["alpha"]})).exit_code == 0
    _synced(cluster, "filter-1", "filter-2")

    cluster.daemon.kill()  # SIGKILL: no goodbye to anyone
    for addr in (addr1, addr2):
        assert check(addr, "alpha") == {"action": "block", "body": "alpha", "version": 1}
    unreachable = cluster.cli("status")
    assert unreachable.exit_code == 4 and "unreachable" in unreachable.stderr

    proc2.stop()  # filter-2 is down while the change is made
    port = cluster.address.rsplit(":", 1)[1]
    cluster.restart_daemon(int(port))
    applied = cluster.cli("config", "apply", "-f", _write(tmp_path, "v2.yaml", {"sensitive_words": ["beta"]}))
    assert applied.exit_code == 0, (cluster.daemon.ready_line, applied.stderr)
    wait_until(lambda: check(addr1, "beta")["action"] == "block", what="filter-1 reconnected and got v2")
    states = cluster.states()
    assert states["filter-2"] == {"filter-rules": "STALE", "_health": "DOWN"}

    proc2.start()  # same state dir: serves v1 from disk at once, then gets v2
    addr2 = proc2.ready_line.split()[-1]
    wait_until(lambda: check(addr2, "beta")["version"] == 2, what="filter-2 caught up")
    assert check(addr2, "alpha")["action"] == "allow"
    _synced(cluster, "filter-1", "filter-2")


def test_invalid_documents_and_tokens_are_refused(cluster, tmp_path):
    bad = _write(tmp_path, "bad.yaml", {"spam_rules": [{"type": "frequency", "limit": -1, "window": 60}]})
    result = cluster.cli("config", "apply", "-f", bad)
    assert result.exit_code == 3
    assert result.stderr.startswith("error: invalid filter-rules: spec.spam_rules.0.limit: Input should be greater than 0")

    push = _write(tmp_path, "push.yaml", {"push_rules": {"quiet_hours": {"start": "23:00", "end": "7am"}}}, kind="push")
    result = cluster.cli("config", "apply", "-f", push)
    assert result.exit_code == 3 and "spec.push_rules.quiet_hours.end: '7am' is not a time of day" in result.stderr

    viewer = cluster.cli("auth", "token", "issue", "--role", "viewer", "-o", "json")
    assert viewer.exit_code == 0, viewer.output
    viewer_token = json.loads(viewer.stdout)["token"]
    good = _write(tmp_path, "good.yaml", {"sensitive_words": ["alpha"]})
    denied = cluster.cli("config", "apply", "-f", good, token=viewer_token)
    assert denied.exit_code == 5 and "role viewer may not do this; needs operator" in denied.stderr
    assert cluster.cli("config", "diff", "-f", good, token=viewer_token).exit_code == 1  # a dry run is a read
    assert cluster.cli("status", token=viewer_token).exit_code == 0

    operator = json.loads(cluster.cli("auth", "token", "issue", "--role", "operator", "-o", "json").stdout)["token"]
    assert cluster.cli("config", "apply", "-f", good, token=operator).exit_code == 0
    assert cluster.cli("config", "rollback", "filter-rules", "--to", "1", "--yes", token=operator).exit_code == 5
    assert cluster.cli("auth", "token", "issue", "--role", "admin", token=operator).exit_code == 5

    anonymous = cluster.cli("status", token=None)
    assert anonymous.exit_code == 5 and "missing token" in anonymous.stderr
    forged = cluster.cli("status", token=viewer_token[:-4] + "AAAA")
    assert forged.exit_code == 5 and "bad token signature" in forged.stderr
