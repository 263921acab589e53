"""What every real server under test shares: ports, a temp root, a process group, readiness.

A server is described by (kind, root, ports) alone; its command line is rebuilt from them,
so a handle loaded from endpoints.json in another process can still kill, stop and restart
the server that `python -m tests.infra up` started. Each server runs in its own session
(process group = its pid), so stop/kill reach every child it forked.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

from .install import InfraError

__all__ = ["Server", "free_port", "free_ports", "free_port_pair", "http_status", "wait_until", "InfraError"]

HOST = "127.0.0.1"
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now; never the same one twice in this process."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_open(port: int, host: str = HOST) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        return True
    except OSError:
        return False


def wait_listening(port: int, *, timeout: float = 30, host: str = HOST) -> None:
    """Until something accepts connections on host:port; TimeoutError after timeout."""
    if not wait_until(lambda: port_open(port, host), timeout=timeout, interval=0.1):
        raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:g}s")


def free_ports(count: int) -> list[int]:
    return [free_port() for _ in range(count)]


def _bindable(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port_pair(offset: int) -> int:
    """A free port P whose P + offset is free too (never handed out before, either of them).

    For servers that also listen on a port derived from the one they are given (SeaweedFS:
    gRPC on port + 10000).
    """
    for _ in range(200):
        port = free_port()
        other = port + offset
        if other <= 65535 and other not in _handed_out and _bindable(other):
            _handed_out.add(other)
            return port
    raise InfraError(f"no free pair of loopback ports {offset} apart")


def http_status(url: str, *, timeout: float = 2.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def metrics_text(admin_port: int, *, timeout: float = 5.0) -> str | None:
    """A Flare process's /metrics on its admin port, or None if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{admin_port}/metrics", timeout=timeout) as response:  # noqa: S310
            return response.read().decode()
    except OSError:
        return None


def wait_until(predicate, *, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            return result
        time.sleep(interval)


def _proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, process group) of a live pid, None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[2])


def _group_alive(pgid: int) -> bool:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            state = _proc_state(int(entry))
            if state and state[1] == pgid and state[0] != "Z":
                return True
    return False


def _processes_under(root: Path) -> list[tuple[int, int]]:
    """(pid, pgid) of live processes whose working directory is inside root.

    Every server runs with its cwd in its root (postgres backends chdir to the data dir), so
    this finds a server even when the pid recorded for it is stale (restarted elsewhere).
    """
    found = []
    prefix = str(root.resolve())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd == prefix or cwd.startswith(prefix + "/"):
            state = _proc_state(int(entry))
            if state and state[0] != "Z":
                found.append((int(entry), state[1]))
    return found


class Server:
    """One server process. Subclasses give its command line and readiness check."""

    kind: ClassVar[str] = ""
    port_names: ClassVar[tuple[str, ...]] = ("main",)
    run_as: ClassVar[str | None] = None  # e.g. "postgres": servers that refuse root
    stop_signal: ClassVar[int] = signal.SIGTERM
    start_timeout: ClassVar[float] = 60.0
    stop_timeout: ClassVar[float] = 15.0

    def __init__(self, *, root: str | Path, ports: dict[str, int], pid: int | None = None,
                 owned: bool = True, host: str = HOST) -> None:
        self.root = Path(root)
        self.ports = dict(ports)
        self.host = host
        self.pid = pid
        self.owned = owned  # False: started by `up` in another process; the session leaves it running
        self._popen: subprocess.Popen | None = None

    # -- what a subclass provides ------------------------------------------------------
    @classmethod
    def allocate_ports(cls) -> dict[str, int]:
        """Free loopback ports for a new server, by name (port_names)."""
        return {name: free_port() for name in cls.port_names}

    @property
    def url(self) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def prepare(self) -> None:
        """One-time setup of a fresh root (initdb, storage format …)."""

    def not_ready_reason(self) -> str | None:
        """None when the server answers its clients; otherwise what is still wrong."""
        raise NotImplementedError

    # -- common surface -------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.ports["main"]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @classmethod
    def create(cls, *, base_dir: str | Path | None = None) -> Server:
        """Fresh ports and temp root, prepared and started (ready when this returns)."""
        root = Path(tempfile.mkdtemp(prefix=f"flare-{cls.kind}-", dir=base_dir))
        server = cls(root=root, ports=cls.allocate_ports())
        try:
            server.data_dir.mkdir(parents=True, exist_ok=True)
            server._chown_root()
            server.prepare()
            server.start()
        except BaseException:
            server.destroy()
            raise
        return server

    def _chown_root(self) -> None:
        user = self._run_as_user()
        if user is None:
            return
        entry = pwd.getpwnam(user)
        for path in [self.root, *self.root.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run_as_user(self) -> str | None:
        return self.run_as if self.run_as and os.geteuid() == 0 else None

    def _user_kwargs(self) -> dict[str, Any]:
        user = self._run_as_user()
        if user is None:
            return {}
        entry = pwd.getpwnam(user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def run_tool(self, argv: list[str], *, timeout: float = 120, what: str = "",
                 env: dict[str, str] | None = None) -> str:
        """Run a helper command (as the server's user) and return its output."""
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  env={**self.environment(), **(env or {})}, cwd=self.root,
                                  stdin=subprocess.DEVNULL,
                                  **self._user_kwargs())
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InfraError(f"{self.kind}: {what or argv[0]} failed: {exc}") from exc
        if proc.returncode != 0:
            raise InfraError(f"{self.kind}: {what or ' '.join(argv)} exited {proc.returncode}: "
                             f"{(proc.stdout + proc.stderr).strip()[-2000:]}")
        return proc.stdout

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def is_running(self) -> bool:
        # The child we started is alive: running. Checked first because, right after Popen on a
        # loaded machine, the child may not have reached setsid() and chdir() yet, so neither the
        # group nor the cwd test below finds it and a healthy start read as "exited".
        if self._popen is not None and self._popen.poll() is None:
            return True
        if self.pid is not None and _group_alive(self.pid):
            return True
        return bool(_processes_under(self.root))

    def start(self) -> None:
        """Start on the same ports and data dir (after stop/kill too); wait until ready."""
        if self.is_running():
            return
        argv = self.command()
        with open(self.log_path, "a") as log:
            log.write(f"\n--- start {time.strftime('%H:%M:%S')}: {' '.join(argv)[:500]}\n")
            log.flush()
            try:
                self._popen = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    cwd=self.root, env=self.environment(), start_new_session=True,
                    **self._user_kwargs(),
                )
            except OSError as exc:
                raise InfraError(f"{self.kind}: cannot run {argv[0]}: {exc}") from exc
        self.pid = self._popen.pid
        self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.start_timeout)
        reason = "not checked"
        while time.monotonic() < deadline:
            if not self.is_running():
                raise InfraError(f"{self.kind} exited during startup; log {self.log_path}:\n{self.log_tail()}")
            reason = self.not_ready_reason()
            if reason is None:
                return
            time.sleep(0.25)
        raise InfraError(f"{self.kind} not ready after {timeout or self.start_timeout:.0f}s ({reason}); "
                         f"log {self.log_path}:\n{self.log_tail()}")

    def _signal_group(self, sig: int) -> None:
        groups = {pgid for _pid, pgid in _processes_under(self.root)}
        if self.pid is not None:
            groups.add(self.pid)
        for pgid in groups:
            try:
                os.killpg(pgid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running():
                return True
            time.sleep(0.05)
        return False

    def _reap(self) -> None:
        if self._popen is not None:
            try:
                self._popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def kill(self) -> None:
        """kill -9 the whole process group (a crash); data stays for a restart."""
        self._signal_group(signal.SIGKILL)
        self._wait_gone(10)
        self._reap()

    def stop(self) -> None:
        """Graceful stop (falls back to kill -9); data stays for a restart."""
        if not self.is_running():
            return
        self._signal_group(self.stop_signal)
        if not self._wait_gone(self.stop_timeout):
            self._signal_group(signal.SIGKILL)
            self._wait_gone(10)
        self._reap()

    def restart(self, *, hard: bool = False) -> None:
        self.kill() if hard else self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop (hard) and remove the temp root."""
        self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- endpoints.json ---------------------------------------------------------------------
    def endpoints(self) -> dict[str, Any]:
        """What a client needs; subclasses add their own fields."""
        return {"url": self.url, "host": self.host, "port": self.port}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.endpoints(), "root": str(self.root), "ports": self.ports,
                "pid": self.pid, "log": str(self.log_path)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Server:
        return cls(root=data["root"], ports=data["ports"], pid=data.get("pid"), owned=False,
                   host=data.get("host", HOST))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} pid={self.pid}>"
