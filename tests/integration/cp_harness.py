"""Processes for the control-plane integration tests: the daemon, filter instances, flarectl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from tests.cli_runner import run_cli

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("FLARE_TOKEN", None)
    env.pop("FLARE_CONTROLPLANE", None)
    return env


def namespace_url(etcd_url: str) -> str:
    """Each test gets its own /ns-… key namespace on the shared etcd."""
    return f"{etcd_url}/ns-{uuid.uuid4().hex[:8]}"


class Proc:
    def __init__(self, args: list[str], ready_prefix: str, log: Path) -> None:
        self.args = args
        self.log = log
        self._ready_prefix = ready_prefix
        self.popen: subprocess.Popen | None = None
        self.ready_line = ""

    def start(self, timeout: float = 20.0) -> Proc:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log, "ab")
        self.popen = subprocess.Popen([sys.executable, *self.args], stdout=subprocess.PIPE, stderr=out, env=_env(),
                                      cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + timeout
        assert self.popen.stdout is not None
        while time.monotonic() < deadline:
            line = self.popen.stdout.readline().decode()
            if line.startswith(self._ready_prefix):
                self.ready_line = line.strip()
                return self
            if not line and self.popen.poll() is not None:
                break
        raise AssertionError(f"{self.args} did not become ready; log: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_daemon(store_url: str, data_dir: Path, *, port: int = 0, resync: float = 1.0) -> tuple[Proc, str, str]:
    proc = Proc(["-m", "controlplane", "--store", store_url, "--data-dir", str(data_dir), "--port", str(port),
                 "--resync-interval", str(resync), "--log-level", "WARNING"],
                "controlplane listening on", data_dir / "daemon.log").start()
    parts = proc.ready_line.split()
    address, token_path = parts[3], parts[5]
    return proc, address, Path(token_path).read_text().strip()


def start_instance(name: str, controlplane: str, token: str, state_dir: Path, *, max_words: int = 0) -> tuple[Proc, str]:
    state_dir.mkdir(parents=True, exist_ok=True)
    proc = Proc(["-m", "tests.integration.demo_instance", "--instance", name, "--controlplane", controlplane,
                 "--token", token, "--state-dir", str(state_dir), "--max-words", str(max_words)],
                f"instance {name} listening on", state_dir / "instance.log").start()
    return proc, proc.ready_line.split()[-1]


def check(address: str, text: str) -> dict:
    url = f"http://{address}/check?text={urllib.parse.quote(text)}"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        return json.loads(response.read())


def flarectl(args: list[str], *, controlplane: str, token: str | None, input: str | None = None):
    from flarectl.main import app

    env = {"FLARE_CONTROLPLANE": controlplane, "FLARECTL_CONFIG": "/nonexistent", "FLARE_TOKEN": token or ""}
    return run_cli(app, args, env=env, input=input)


def wait_until(predicate, *, timeout: float = 15.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


def status_states(controlplane: str, token: str) -> dict[str, dict[str, str]]:
    result = flarectl(["status", "-o", "json"], controlplane=controlplane, token=token)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return {i["instance_id"]: {k["kind"]: k["state"] for k in i["kinds"]} | {"_health": i["health"]}
            for i in data["instances"]}
