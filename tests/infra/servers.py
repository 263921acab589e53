"""Real servers for tests and developers: start, find, stop (ARCHITECTURE §4, INFRA.md).

    from tests.infra.servers import start_server
    etcd = start_server("etcd")        # installs what is missing, starts, waits until ready
    etcd.url                            # 'etcd://127.0.0.1:PORT'
    etcd.kill(); etcd.start()           # crash and restart on the same port and data dir
    etcd.destroy()                      # stop and remove its temp dir

Kinds: etcd, redis, redis-cluster, postgres, kafka, s3 (SeaweedFS). `python -m tests.infra up`
starts them and records them in an endpoints file (FLARE_SERVERS_FILE, default
<repo>/.servers/endpoints.json); the pytest fixtures reuse servers listed there.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from .install import InfraError, ensure

__all__ = [
    "KINDS",
    "InfraError",
    "server_class",
    "start_server",
    "endpoints_file",
    "load_endpoints",
    "save_endpoints",
    "load_running",
    "up",
    "down",
    "status",
]

# start order; etcd first because the control plane needs it earliest
KINDS: tuple[str, ...] = ("etcd", "redis", "redis-cluster", "postgres", "kafka", "s3")

_CLASSES = {
    "etcd": "tests.infra.etcd:EtcdServer",
    "redis": "tests.infra.redis:RedisServer",
    "redis-cluster": "tests.infra.redis:RedisCluster",
    "postgres": "tests.infra.postgres:PostgresServer",
    "kafka": "tests.infra.kafka_broker:KafkaServer",
    "s3": "tests.infra.seaweedfs:SeaweedFSServer",
}

_REPO = Path(__file__).resolve().parents[2]


def server_class(kind: str):
    try:
        module, _, name = _CLASSES[kind].partition(":")
    except KeyError:
        raise InfraError(f"unknown server kind {kind!r} (known: {', '.join(KINDS)})") from None
    return getattr(importlib.import_module(module), name)


def start_server(kind: str, *, install: bool = True, base_dir: str | Path | None = None):
    """A new, ready server of this kind on free loopback ports (installing it first)."""
    if install:
        ensure([kind], log=lambda _line: None)
    return server_class(kind).create(base_dir=base_dir or os.environ.get("FLARE_INFRA_TMP"))


# -- the endpoints file -----------------------------------------------------------------------

def endpoints_file() -> Path:
    return Path(os.environ.get("FLARE_SERVERS_FILE") or _REPO / ".servers" / "endpoints.json")


def load_endpoints(path: Path | None = None) -> dict[str, dict[str, Any]]:
    path = path or endpoints_file()
    try:
        return json.loads(path.read_text()).get("servers", {})
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise InfraError(f"{path} is not valid JSON: {exc}") from exc


def save_endpoints(servers: dict[str, dict[str, Any]], path: Path | None = None) -> Path:
    path = path or endpoints_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    ordered = {kind: servers[kind] for kind in sorted(servers, key=lambda k: KINDS.index(k) if k in KINDS else 99)}
    tmp.write_text(json.dumps({"version": 1, "servers": ordered}, indent=2) + "\n")
    tmp.replace(path)
    return path


def load_running(kind: str, path: Path | None = None):
    """The server of this kind listed in the endpoints file, if it answers; else None."""
    data = load_endpoints(path).get(kind)
    if not data:
        return None
    server = server_class(kind).from_dict(data)
    return server if server.not_ready_reason() is None else None


# -- up / down / status -------------------------------------------------------------------------

def up(kinds: list[str], *, log=print) -> dict[str, dict[str, Any]]:
    """Install and start the kinds not already running; record all in the endpoints file."""
    ensure(kinds, log=log)
    recorded = load_endpoints()
    started: dict[str, Any] = {}
    errors: dict[str, str] = {}

    def start(kind: str) -> None:
        try:
            started[kind] = start_server(kind, install=False)
        except InfraError as exc:
            errors[kind] = str(exc)

    threads = []
    for kind in kinds:
        running = load_running(kind)
        if running is not None:
            log(f"{kind}: already running at {running.url}")
            continue
        if kind in recorded:  # listed but dead: clean up what is left of it
            _destroy_recorded(kind, recorded.pop(kind))
        thread = threading.Thread(target=start, args=(kind,))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    for kind, server in started.items():
        recorded[kind] = server.to_dict()
    save_endpoints(recorded)
    if errors:
        raise InfraError("; ".join(f"{kind}: {reason}" for kind, reason in errors.items()))
    return {kind: recorded[kind] for kind in kinds if kind in recorded}


def _destroy_recorded(kind: str, data: dict[str, Any]) -> None:
    try:
        server_class(kind).from_dict(data).destroy()
    except Exception:  # noqa: BLE001 - best effort on a server that is already gone
        pass


def down(kinds: list[str] | None = None, *, log=print) -> list[str]:
    """Stop the servers `up` started (all, or the given kinds) and remove their temp dirs."""
    recorded = load_endpoints()
    stopped = []
    for kind in list(recorded):
        if kinds and kind not in kinds:
            continue
        _destroy_recorded(kind, recorded.pop(kind))
        log(f"{kind}: stopped")
        stopped.append(kind)
    if recorded:
        save_endpoints(recorded)
    else:
        endpoints_file().unlink(missing_ok=True)
    return stopped


def status(kinds: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Each recorded server with `ready` true/false and why not."""
    out = {}
    for kind, data in load_endpoints().items():
        if kinds and kind not in kinds:
            continue
        server = server_class(kind).from_dict(data)
        reason = server.not_ready_reason()
        out[kind] = {**server.endpoints(), "ready": reason is None, "problem": reason}
    return out
