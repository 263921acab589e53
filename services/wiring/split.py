"""The split deployment on one machine: the control plane and N processes per service.

    deployment = SplitDeployment.from_config_file("flare.toml")
    deployment.start()              # every process at once; returns when all are healthy
    deployment.gateway_urls         # ["ws://127.0.0.1:…/ws", …]
    deployment.stop()               # SIGTERM, SIGKILL after split.stop_timeout_s

`flarectl up --split` and the e2e suite use this; `flarectl down` stops a deployment from
the state file (`<data_dir>/split.json`: pids, ports, logs). Each process runs in its own
session, so a Ctrl-C in the terminal reaches only the launcher, which then stops the
processes in order instead of every process dying at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from services.common.config import FlareConfig, load_config
from services.common.errors import FlareError
from services.common.paths import (create_private, ensure_admin_token, ensure_data_dir, ensure_private_dir,
                                   load_or_create_secret, write_private)

__all__ = ["SplitDeployment", "SplitProcess", "STATE_FILE", "stop_from_state", "read_state", "live_processes",
           "restart_from_state"]

STATE_FILE = "split.json"
# Start order and the config field that counts each service's instances.
SERVICES: tuple[tuple[str, str], ...] = (
    ("session", "sessions"), ("filter", "filters"), ("store", "stores"), ("sync", "syncs"),
    ("router", "routers"), ("gateway", "gateways"),
)


@dataclass
class SplitProcess:
    service: str
    instance_id: str
    argv: list[str]
    log: str
    ports: dict[str, int] = field(default_factory=dict)  # 0 until the ready line says
    pid: int = 0
    log_offset: int = 0  # where this start's output begins in the (appended) log

    @property
    def health_url(self) -> str | None:
        return f"http://127.0.0.1:{self.ports['admin']}/healthz" if "admin" in self.ports else None


class _Ports:
    """Sequential from split.base_port; with no base, 0: each process binds a free port
    itself and reports it on its ready line (picking free ports here for the processes to
    bind later races with everything else starting on the machine)."""

    def __init__(self, base: int) -> None:
        self._next = base

    def take(self) -> int:
        if not self._next:
            return 0
        port, self._next = self._next, self._next + 1
        return port


class SplitDeployment:
    def __init__(self, config: FlareConfig, config_path: Path, *, env: dict[str, str] | None = None,
                 python: str = sys.executable, log_level: str = "info") -> None:
        self.config = config
        self.config_path = Path(config_path).resolve()
        self.data_dir = Path(config.data_dir).resolve()
        self._env = dict(os.environ if env is None else env)
        self._python = python
        self._log_level = log_level
        self.processes: list[SplitProcess] = []
        self.controlplane_address = ""
        self.secret = b""
        self._children: dict[int, subprocess.Popen] = {}

    @classmethod
    def from_config_file(cls, path: str | Path, **kwargs) -> SplitDeployment:
        return cls(load_config(path), Path(path), **kwargs)

    # -- what is running ------------------------------------------------------------------
    @property
    def gateway_urls(self) -> list[str]:
        split = self.config.split
        return [f"ws://{split.host}:{p.ports['ws']}/ws" for p in self.processes if p.service == "gateway"]

    def instances(self, service: str) -> list[SplitProcess]:
        return [p for p in self.processes if p.service == service]

    # -- start ----------------------------------------------------------------------------
    def _plan_controlplane(self, ports: _Ports) -> SplitProcess:
        cfg, split = self.config, self.config.split
        port = ports.take()
        return SplitProcess(
            "controlplane", "controlplane",
            [self._python, "-m", "controlplane", "--config", str(self.config_path), "--store",
             cfg.backend_url("configstore"), "--data-dir", str(self.data_dir), "--host", split.host,
             "--port", str(port), "--log-level", self._log_level.upper()],
            str(self.data_dir / "logs" / "controlplane.log"), {"grpc": port})

    def _plan_instances(self, ports: _Ports) -> list[SplitProcess]:
        cfg, split = self.config, self.config.split
        planned = []
        for service, count_field in SERVICES:
            for index in range(getattr(split, count_field)):
                instance_id = f"{service}-{index + 1}"
                main_port, admin_port = ports.take(), ports.take()
                argv = [self._python, "-m", f"services.{service}", "--config", str(self.config_path),
                        "--instance-id", instance_id, "--host", split.host, "--port", str(main_port),
                        "--admin-port", str(admin_port), "--log-level", self._log_level, "--log-format", "json"]
                process_ports = {"grpc": main_port, "admin": admin_port}
                if service == "gateway":
                    grpc_port = ports.take()
                    # Message ids are minted per gateway: each needs its own node id.
                    argv += ["--grpc-port", str(grpc_port), "--node-id", str((cfg.node_id + index) % 1024)]
                    process_ports = {"ws": main_port, "grpc": grpc_port, "admin": admin_port}
                log = str(self.data_dir / "logs" / f"{instance_id}.log")
                planned.append(SplitProcess(service, instance_id, argv, log, process_ports))
        return planned

    def _plan(self) -> None:
        """Every process with its ports (0: learnt from its ready line); for tests and --dry runs."""
        ports = _Ports(self.config.split.base_port)
        self.processes = [self._plan_controlplane(ports)]
        self.processes += self._plan_instances(ports)

    def start(self) -> None:
        """Start the control plane, then every instance at once; return when all are healthy."""
        ensure_data_dir(self.data_dir)
        ensure_private_dir(self.data_dir / "logs")
        # The secret and the admin token exist before any process starts: gateways must all
        # verify client tokens with one secret, and instances authenticate to the daemon.
        self.secret = load_or_create_secret(self.data_dir, self.config.token_secret)
        ensure_admin_token(self.data_dir, self.secret)
        ports = _Ports(self.config.split.base_port)
        deadline = time.monotonic() + self.config.split.start_timeout_s
        try:
            # The control plane first: every instance is told its address at start.
            controlplane = self._plan_controlplane(ports)
            self.processes = [controlplane]
            self._spawn(controlplane, self._env)
            self._wait_healthy([controlplane], deadline)
            self.controlplane_address = f"{self.config.split.host}:{controlplane.ports['grpc']}"
            instances = self._plan_instances(ports)
            self.processes += instances
            env = {**self._env, "FLARE_CONTROLPLANE__ADDRESS": self.controlplane_address}
            for process in instances:
                self._spawn(process, env)
            self.write_state()
            self._wait_healthy(instances, deadline)
            self._wait_connected(instances, deadline)
            self.write_state()  # now with every port
        except BaseException:
            self.stop()
            raise

    def _spawn(self, process: SplitProcess, env: dict[str, str]) -> None:
        with os.fdopen(create_private(Path(process.log), os.O_WRONLY | os.O_APPEND), "ab") as log:
            process.log_offset = log.tell()
            proc = subprocess.Popen(process.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        process.pid = proc.pid
        self._children[proc.pid] = proc

    def _wait_healthy(self, processes: list[SplitProcess], deadline: float) -> None:
        def healthy(process: SplitProcess) -> bool:
            proc = self._children.get(process.pid)
            if proc is not None and proc.poll() is not None:
                raise FlareError(f"{process.instance_id} exited with {proc.returncode} during start:\n"
                                 f"{_tail(process.log)}")
            return _read_ready_line(process) and _healthy(process)

        _wait_for_each(processes, healthy, deadline, "not healthy in time", interval=0.1, show_log=True)

    def _wait_connected(self, processes: list[SplitProcess], deadline: float) -> None:
        """Until every instance sees every other in its topology (the `peers` of /healthz).
        Healthy is not enough: an instance registers at the end of its start, and the others
        learn of it through their watch a moment later. Until then a gateway answered a
        client's recall `unavailable` (no sync instance), and two gateways that saw a
        different number of routers sent one conversation to two owners."""
        planned: dict[str, int] = {}
        for process in processes:
            planned[process.service] = planned.get(process.service, 0) + 1

        def connected(process: SplitProcess) -> bool:
            peers = _health_json(process).get("peers", {})
            return all(peers.get(service, 0) >= count for service, count in planned.items())

        _wait_for_each([p for p in processes if p.health_url is not None], connected, deadline,
                       "instances do not see each other in the topology in time", interval=0.05)

    # -- stop -----------------------------------------------------------------------------
    def stop(self) -> None:
        """SIGTERM every process (instances before the control plane), SIGKILL stragglers."""
        timeout = self.config.split.stop_timeout_s
        instances = [p for p in self.processes if p.service != "controlplane"]
        daemons = [p for p in self.processes if p.service == "controlplane"]
        for group in (instances, daemons):
            _terminate([p.pid for p in group if p.pid], timeout, self._children)
        self._children.clear()
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / STATE_FILE).unlink()

    def kill(self, instance_id: str) -> None:
        """kill -9 one instance (fault tests)."""
        process = next(p for p in self.processes if p.instance_id == instance_id)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        proc = self._children.get(process.pid)
        if proc is not None:
            proc.wait(5)

    # -- state file -----------------------------------------------------------------------
    def write_state(self) -> None:
        state = {"config": str(self.config_path), "controlplane": self.controlplane_address,
                 "gateway_urls": self.gateway_urls, "stop_timeout_s": self.config.split.stop_timeout_s,
                 "processes": [asdict(p) for p in self.processes]}
        path = self.data_dir / STATE_FILE
        write_private(path, (json.dumps(state, indent=2) + "\n").encode())

    def __enter__(self) -> SplitDeployment:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_ready_line(process: SplitProcess) -> bool:
    """Fill in the ports the process bound, from the line it prints once it serves:
    `ready <service> <id> grpc=H:P admin=http://H:P [ws=ws://H:P/ws]` (an instance) or
    `controlplane listening on H:P admin-token PATH` (the daemon)."""
    if all(process.ports.values()):
        return True
    try:
        with open(process.log, "rb") as log:
            log.seek(process.log_offset)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return False
    for line in lines:
        if line.startswith("controlplane listening on "):
            process.ports["grpc"] = int(line.split()[3].rsplit(":", 1)[1])
            return True
        if line.startswith(f"ready {process.service} {process.instance_id} "):
            fields = dict(item.split("=", 1) for item in line.split()[3:] if "=" in item)
            for name, value in fields.items():
                if name in process.ports:
                    process.ports[name] = int(value.removesuffix("/ws").rsplit(":", 1)[1])
            return all(process.ports.values())
    return False


def _healthy(process: SplitProcess) -> bool:
    url = process.health_url
    if url is None:  # the control plane has no admin port: its gRPC port answering is enough
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", process.ports["grpc"])) == 0
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - loopback
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_for_each(processes: list[SplitProcess], ready: Callable[[SplitProcess], bool], deadline: float,
                   what: str, *, interval: float, show_log: bool = False) -> None:
    pending = list(processes)
    while True:
        pending = [p for p in pending if not ready(p)]
        if not pending:
            return
        if time.monotonic() > deadline:
            names = ", ".join(p.instance_id for p in pending)
            raise FlareError(f"{what}: {names}" + (f"\n{_tail(pending[0].log)}" if show_log else ""))
        time.sleep(interval)


def _health_json(process: SplitProcess) -> dict:
    try:
        with urllib.request.urlopen(process.health_url, timeout=1.0) as response:  # noqa: S310 - loopback
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503 (degraded) still carries the JSON body
        with contextlib.suppress(ValueError):
            return json.loads(exc.read())
    except (urllib.error.URLError, OSError, ValueError):
        pass
    return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


def _terminate(pids: list[int], timeout: float, children: dict[int, subprocess.Popen]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        proc = children.get(pid)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                break
            if proc is None and not _alive(pid):
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)


def _tail(path: str, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    return ""


def read_state(data_dir: Path) -> dict | None:
    try:
        return json.loads((Path(data_dir) / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _ours(pid: int) -> bool:
    """The pid still runs a Flare process (not a stranger that reused the number)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"services." in cmdline or b"controlplane" in cmdline


def live_processes(data_dir: Path) -> list[dict]:
    """The processes split.json lists that still run (a stale file lists none)."""
    state = read_state(data_dir) or {}
    return [p for p in state.get("processes", []) if p.get("pid") and _alive(p["pid"]) and _ours(p["pid"])]


def stop_from_state(data_dir: Path, *, timeout: float | None = None) -> list[str]:
    """`flarectl down`: stop what split.json lists; return the instance ids that were running."""
    state = read_state(data_dir)
    if state is None:
        return []
    running = live_processes(data_dir)
    timeout = state.get("stop_timeout_s", 10.0) if timeout is None else timeout
    instances = [p["pid"] for p in running if p["service"] != "controlplane"]
    daemons = [p["pid"] for p in running if p["service"] == "controlplane"]
    for group in (instances, daemons):
        _terminate(group, timeout, {})
    with contextlib.suppress(FileNotFoundError):
        (Path(data_dir) / STATE_FILE).unlink()
    return [p["instance_id"] for p in running]


def restart_from_state(data_dir: Path, instance_id: str, *, timeout: float = 60.0) -> dict:
    """`flarectl restart`: stop one instance that split.json lists (SIGTERM, then SIGKILL), start
    it again with the same command line, wait for its ready line and /healthz, and record its
    new pid and ports in split.json (so `flarectl down` stops the new process)."""
    data_dir = Path(data_dir)
    state = read_state(data_dir)
    if state is None:
        raise FlareError(f"no split deployment recorded in {data_dir / STATE_FILE}")
    entry = next((p for p in state["processes"] if p["instance_id"] == instance_id), None)
    if entry is None or entry["service"] == "controlplane":
        known = ", ".join(p["instance_id"] for p in state["processes"] if p["service"] != "controlplane")
        raise FlareError(f"no instance {instance_id!r} in {data_dir / STATE_FILE} (instances: {known})")
    started = time.monotonic()
    old_pid = entry["pid"]
    if old_pid and _alive(old_pid) and _ours(old_pid):
        _terminate([old_pid], state.get("stop_timeout_s", 10.0), {})
    process = SplitProcess(entry["service"], instance_id, entry["argv"], entry["log"],
                           dict.fromkeys(entry["ports"], 0))  # learnt again from the ready line
    env = {**os.environ, "FLARE_CONTROLPLANE__ADDRESS": state["controlplane"]}
    with os.fdopen(create_private(Path(process.log), os.O_WRONLY | os.O_APPEND), "ab") as log:
        process.log_offset = log.tell()
        proc = subprocess.Popen(process.argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    process.pid = proc.pid
    deadline = time.monotonic() + timeout
    while not (_read_ready_line(process) and _healthy(process)):
        if proc.poll() is not None:
            raise FlareError(f"{instance_id} exited with {proc.returncode} during restart:\n{_tail(process.log)}")
        if time.monotonic() > deadline:
            raise FlareError(f"{instance_id} not healthy within {timeout:g}s after restart:\n{_tail(process.log)}")
        time.sleep(0.1)
    entry.update(pid=process.pid, ports=process.ports, log_offset=process.log_offset)
    if process.service == "gateway":
        old_urls = [u for u in state["gateway_urls"]]
        index = [p["instance_id"] for p in state["processes"] if p["service"] == "gateway"].index(instance_id)
        host = old_urls[index].split("//", 1)[1].rsplit(":", 1)[0]
        old_urls[index] = f"ws://{host}:{process.ports['ws']}/ws"
        state["gateway_urls"] = old_urls
    write_private(data_dir / STATE_FILE, (json.dumps(state, indent=2) + "\n").encode())
    return {"instance_id": instance_id, "service": process.service, "old_pid": old_pid, "pid": process.pid,
            "ports": process.ports, "healthy": True, "seconds": round(time.monotonic() - started, 3)}
