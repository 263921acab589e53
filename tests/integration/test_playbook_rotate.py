"""rotate-filter-rules against a real control plane: a daemon on etcd and filter instances as
processes (one of them NACKs documents over its word limit), the playbook through flarectl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from services.common.auth import issue_token

from .cp_harness import ROOT, check, flarectl, namespace_url, start_daemon, start_instance, status_states, wait_until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]


@pytest.fixture
def cluster(etcd_server, tmp_path):
    procs = []
    daemon, address, admin = start_daemon(namespace_url(etcd_server.url), tmp_path / "cp")
    procs.append(daemon)

    class Cluster:
        def __init__(self) -> None:
            self.address = address
            issued = flarectl(["auth", "token", "issue", "--role", "admin", "--subject", "sre-alice", "-o", "json"],
                              controlplane=address, token=admin)
            assert issued.exit_code == 0, issued.output
            self.token = json.loads(issued.stdout)["token"]
            self.data = tmp_path / "pb"

        def instance(self, name: str, **kwargs):
            # Instances subscribe with a `service` token (an operator's may not).
            secret = (tmp_path / "cp" / "token.secret").read_bytes().strip()
            proc, addr = start_instance(name, address, issue_token(secret, name, role="service"), tmp_path / name,
                                        **kwargs)
            procs.append(proc)
            return proc, addr

        def cli(self, *args: str):
            return flarectl(list(args), controlplane=address, token=self.token)

        def rotate(self, *args: str, canary: str = "filter-1"):
            extra = ("--var", f"canary_instance={canary}") if "--resume" not in args else ()
            return self.cli("playbook", "run", "rotate-filter-rules", "--data-dir", str(self.data), "-o", "json",
                            *extra, *args)

        def states(self):
            return status_states(address, self.token)

        def version(self) -> int:
            return json.loads(self.cli("config", "get", "filter-rules", "-o", "json").stdout)["version"]

        def synced(self, *names: str, version: int):
            def probe():
                data = json.loads(self.cli("status", "-o", "json").stdout)
                kinds = {i["instance_id"]: k for i in data["instances"] for k in i["kinds"] if k["kind"] == "filter-rules"}
                return all(kinds.get(n, {}).get("state") == "SYNCED" and kinds[n]["applied_version"] == version
                           for n in names)
            wait_until(probe, timeout=20, what=f"{names} SYNCED v{version}")

    yield Cluster()
    for proc in reversed(procs):
        proc.stop()


def _doc(tmp_path, name: str, words: list[str]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"kind": "filter-rules", "spec": {"sensitive_words": words}}))
    return str(path)


def _events(data) -> list[dict]:
    return [json.loads(line) for line in (data / "playbooks" / "audit.jsonl").read_text().splitlines()]


def test_rotation_goes_green_and_is_audited(cluster, tmp_path):
    _, addr1 = cluster.instance("filter-1")
    _, addr2 = cluster.instance("filter-2")
    assert cluster.cli("config", "apply", "-f", _doc(tmp_path, "v1.yaml", ["alpha"])).exit_code == 0
    cluster.synced("filter-1", "filter-2", version=1)

    result = cluster.rotate("--var", f"file={_doc(tmp_path, 'v2.yaml', ['alpha', 'beta'])}", "--yes")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert run["status"] == "done" and run["captured"] == {"previous": "1", "desired": "2"}
    assert [s["state"] for s in run["steps"]] == ["done"] * 10
    cluster.synced("filter-1", "filter-2", version=2)
    assert check(addr2, "beta blocker")["action"] == "block" and check(addr1, "beta")["version"] == 2

    events = [e for e in _events(cluster.data) if e["run_id"] == run["run_id"]]
    assert {e["who"] for e in events} == {"sre-alice"}
    assert [(e["step"], e["result"]) for e in events if e["result"] != "started"] == [
        ("current", "done"), ("synced-before", "done"), ("diff", "done"), ("approve-canary", "done"),
        ("canary", "done"), ("canary-acked", "done"), ("canary-healthy", "done"), ("approve-all", "done"),
        ("apply", "done"), ("every-ack", "done"), ("run", "done")]
    assert all(e["output_digest"].startswith("sha256:") for e in events if e["step"] in ("apply", "every-ack")
               and e["result"] == "done")
    history = cluster.cli("playbook", "history", "--data-dir", str(cluster.data), "-o", "json")
    assert [(r["run_id"], r["playbook"], r["who"], r["status"]) for r in json.loads(history.stdout)] == [
        (run["run_id"], "rotate-filter-rules", "sre-alice", "done")]


def test_a_canary_that_nacks_is_ended_and_nobody_else_ever_gets_the_document(cluster, tmp_path):
    _, addr1 = cluster.instance("filter-1")
    _, addr2 = cluster.instance("filter-2", max_words=2)
    assert cluster.cli("config", "apply", "-f", _doc(tmp_path, "v1.yaml", ["alpha"])).exit_code == 0
    cluster.synced("filter-1", "filter-2", version=1)

    result = cluster.rotate("--var", f"file={_doc(tmp_path, 'v2.yaml', ['alpha', 'beta', 'gamma'])}", "--yes",
                            canary="filter-2")
    assert result.exit_code == 1, result.output
    run = json.loads(result.stdout)
    assert run["status"] == "rolled-back"
    assert [s["state"] for s in run["steps"]][:6] == ["done", "done", "done", "done", "rolled-back", "failed"]
    assert "fail_when" in run["steps"][5]["result"] and "NACKED" in run["steps"][5]["result"]
    assert run["rollbacks"] == [{"step": "canary", "argv": ["config", "canary", "--end"], "code": 0}]
    assert cluster.version() == 1
    cluster.synced("filter-1", "filter-2", version=1)
    assert check(addr1, "gamma ray") == {"action": "allow", "body": "gamma ray", "version": 1}
    assert check(addr2, "gamma ray") == {"action": "allow", "body": "gamma ray", "version": 1}


def test_a_nack_after_the_canary_rolls_back_to_the_version_before(cluster, tmp_path):
    _, addr1 = cluster.instance("filter-1")
    _, addr2 = cluster.instance("filter-2", max_words=2)
    assert cluster.cli("config", "apply", "-f", _doc(tmp_path, "v1.yaml", ["alpha"])).exit_code == 0
    cluster.synced("filter-1", "filter-2", version=1)

    result = cluster.rotate("--var", f"file={_doc(tmp_path, 'v2.yaml', ['alpha', 'beta', 'gamma'])}", "--yes")
    assert result.exit_code == 1, result.output
    run = json.loads(result.stdout)
    assert run["status"] == "rolled-back"
    assert [s["state"] for s in run["steps"]] == ["done", "done", "done", "done", "rolled-back", "done", "done",
                                                 "done", "rolled-back", "failed"]
    assert "fail_when" in run["steps"][9]["result"] and "NACKED" in run["steps"][9]["result"]
    assert [r["argv"] for r in run["rollbacks"]] == [["config", "rollback", "filter-rules", "--to", "1", "--yes"],
                                                     ["config", "canary", "--end"]]
    # v2 NACKed by filter-2; the rollback made v3 = v1's rules, which both instances run
    assert cluster.version() == 3
    cluster.synced("filter-1", "filter-2", version=3)
    assert check(addr1, "gamma ray") == {"action": "allow", "body": "gamma ray", "version": 3}
    assert check(addr2, "alpha male")["action"] == "block"


def test_dry_run_changes_no_version(cluster, tmp_path):
    cluster.instance("filter-1")
    assert cluster.cli("config", "apply", "-f", _doc(tmp_path, "v1.yaml", ["alpha"])).exit_code == 0
    cluster.synced("filter-1", version=1)
    history_before = cluster.cli("config", "history", "filter-rules", "-o", "json").stdout

    result = cluster.rotate("--var", f"file={_doc(tmp_path, 'v2.yaml', ['alpha', 'beta'])}", "--dry-run")
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert [s["state"] for s in run["steps"]] == ["done"] * 3 + ["would"] * 7
    assert "--dry-run -o json: ok" in run["steps"][4]["result"] and "--dry-run -o json: ok" in run["steps"][8]["result"]
    assert cluster.version() == 1
    assert cluster.cli("config", "history", "filter-rules", "-o", "json").stdout == history_before
    assert cluster.states()["filter-1"]["filter-rules"] == "SYNCED"
    assert cluster.cli("config", "get", "canary").exit_code == 7, "the dry run wrote a canary"


def test_no_terminal_and_no_yes_stops_at_the_gate(cluster, tmp_path):
    cluster.instance("filter-1")
    assert cluster.cli("config", "apply", "-f", _doc(tmp_path, "v1.yaml", ["alpha"])).exit_code == 0
    cluster.synced("filter-1", version=1)
    stopped = cluster.rotate("--var", f"file={_doc(tmp_path, 'v2.yaml', ['beta'])}")
    assert stopped.exit_code == 9
    run = json.loads(stopped.stdout)
    assert run["status"] == "awaiting-approval" and cluster.version() == 1
    resumed = cluster.rotate("--resume", run["run_id"], "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert cluster.version() == 2


def test_a_run_killed_mid_check_resumes_without_repeating_the_apply(cluster, tmp_path):
    proc2, _ = cluster.instance("filter-2")
    cluster.instance("filter-1")
    assert cluster.cli("config", "apply", "-f", _doc(tmp_path, "v1.yaml", ["alpha"])).exit_code == 0
    cluster.synced("filter-1", "filter-2", version=1)
    os.kill(proc2.popen.pid, signal.SIGSTOP)  # filter-2 freezes: v2 stays un-ACKed, every-ack keeps retrying
    try:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "FLARE_CONTROLPLANE": cluster.address,
               "FLARE_TOKEN": cluster.token, "FLARECTL_CONFIG": "/nonexistent", "NO_COLOR": "1"}
        runner = subprocess.Popen(
            [sys.executable, "-m", "flarectl.main", "playbook", "run", "rotate-filter-rules", "--yes", "-o", "json",
             "--data-dir", str(cluster.data), "--var", "canary_instance=filter-1",
             "--var", f"file={_doc(tmp_path, 'v2.yaml', ['alpha', 'beta'])}"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        runs = cluster.data / "playbooks" / "runs"

        def checking():
            for path in runs.glob("*.json") if runs.exists() else []:
                run = json.loads(path.read_text())
                if run["steps"][9]["state"] == "running":
                    return run
            return None
        try:
            run = wait_until(checking, timeout=30, what="every-ack running")
        except AssertionError:
            runner.kill()
            raise AssertionError(runner.communicate()) from None
        runner.kill()
        runner.wait(10)
    finally:
        os.kill(proc2.popen.pid, signal.SIGCONT)
    assert cluster.version() == 2
    killed = json.loads((runs / f"{run['run_id']}.json").read_text())
    assert killed["status"] == "running" and killed["steps"][9]["state"] == "running"

    resumed = cluster.rotate("--resume", run["run_id"], "--yes")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["status"] == "done"
    assert cluster.version() == 2, "the resumed run applied again"
    applies = [e for e in _events(cluster.data) if e["step"] == "apply" and e["result"] == "done"]
    assert len(applies) == 1
    assert [e["result"] for e in _events(cluster.data) if e["step"] == "run"] == ["started", "resumed", "done"]


def test_a_canary_runs_on_its_instances_only_until_the_kind_moves_on(cluster, tmp_path):
    _, addr1 = cluster.instance("filter-1")
    _, addr2 = cluster.instance("filter-2")
    assert cluster.cli("config", "apply", "-f", _doc(tmp_path, "v1.yaml", ["alpha"])).exit_code == 0
    cluster.synced("filter-1", "filter-2", version=1)
    v2 = _doc(tmp_path, "v2.yaml", ["alpha", "beta"])

    started = cluster.cli("config", "canary", "-f", v2, "--instance", "filter-1")
    assert started.exit_code == 0, started.output
    assert started.stdout == "canary v1: serving filter-rules v2 to filter-1 (everyone else keeps v1)\n"
    cluster.synced("filter-1", version=2)
    cluster.synced("filter-2", version=1)
    assert check(addr1, "beta")["action"] == "block" and check(addr2, "beta")["action"] == "allow"
    assert cluster.version() == 1

    promoted = cluster.cli("config", "apply", "-f", v2)
    assert promoted.exit_code == 0 and cluster.version() == 2
    cluster.synced("filter-1", "filter-2", version=2)
    assert check(addr2, "beta") == {"action": "block", "body": "beta", "version": 2}

    v3 = _doc(tmp_path, "v3.yaml", ["gamma"])
    assert cluster.cli("config", "canary", "-f", v3, "--instance", "filter-2").exit_code == 0
    cluster.synced("filter-2", version=3)
    ended = cluster.cli("config", "canary", "--end")
    assert ended.exit_code == 0, ended.output
    assert ended.stdout == "canary of filter-rules ended (v3): every instance runs v2\n"
    cluster.synced("filter-1", "filter-2", version=2)
    assert check(addr2, "gamma")["action"] == "allow"
