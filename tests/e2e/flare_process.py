"""`flarectl up` as a real child process on a temp data dir: ports, health, metrics, output.

For tests (and benches) that need what only a process shows: restarts over the same data
dir, RSS, the log lines it writes, faults switched on from outside.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

from tests.infra.base import free_port, port_open, wait_until

REPO = Path(__file__).resolve().parents[2]

__all__ = ["FlareProcess", "REPO"]


class FlareProcess:
    def __init__(self, data_dir: Path, *, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.env = dict(env or {})
        self.port = free_port()
        self.admin_port = free_port()
        self.controlplane_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []  # everything the process printed, across restarts
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def secret(self) -> bytes:
        return (self.data_dir / "token.secret").read_bytes().strip()

    def start(self, *, timeout: float = 40.0) -> FlareProcess:
        env = {**os.environ, "NO_COLOR": "1", **self.env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flarectl.main", "up", "--data-dir", str(self.data_dir),
             "--port", str(self.port), "--admin-port", str(self.admin_port),
             "--controlplane-port", str(self.controlplane_port), "--log-format", "json"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self._reader = threading.Thread(target=self._drain, args=(self.proc,), daemon=True)
        self._reader.start()
        ready = lambda: (port_open(self.port) and port_open(self.admin_port)) or self.proc.poll() is not None  # noqa: E731
        if not wait_until(ready, timeout=timeout, interval=0.1) or self.proc.poll() is not None:
            self.kill()
            raise RuntimeError("flarectl up did not come up:\n" + "\n".join(self.lines[-40:]))
        return self

    def _drain(self, proc: subprocess.Popen) -> None:
        for raw in proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def stop(self, *, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def health(self) -> dict:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/healthz", timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 503 still carries the JSON body
            return json.loads(exc.read())

    def metrics(self) -> dict[str, float]:
        """Samples of /metrics as {'name{labels}': value}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def rss_bytes(self) -> int:
        """Resident set of the server process (the Python child of the session leader)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def __enter__(self) -> FlareProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
