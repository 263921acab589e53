"""Redis (Debian redis-server 7.0): a single server and a 3-master Redis Cluster."""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from .base import HOST, Server
from .install import InfraError, find_binary

__all__ = ["RedisServer", "RedisCluster", "redis_ping"]


def redis_ping(host: str, port: int, *, timeout: float = 1.0) -> str | None:
    """None if the server answers PING with PONG, else what went wrong."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return f"PING: {exc}"
    return None if reply.startswith(b"+PONG") else f"PING answered {reply!r}"


class RedisServer(Server):
    kind = "redis"
    port_names = ("main",)
    start_timeout = 20.0

    cluster_node = False

    @property
    def url(self) -> str:
        return f"redis://{self.address}"

    def command(self) -> list[str]:
        argv = [
            find_binary("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", self.host, "--protected-mode", "no",
            "--daemonize", "no", "--dir", str(self.data_dir),
            "--save", "", "--appendonly", "no", "--loglevel", "warning",
        ]
        if self.cluster_node:
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--cluster-port", str(self.ports["bus"]), "--cluster-node-timeout", "3000",
                     "--cluster-require-full-coverage", "yes"]
        return argv

    def not_ready_reason(self) -> str | None:
        return redis_ping(self.host, self.port)

    def redis_cli(self, *args: str) -> str:
        """Run redis-cli against this server: the independent client for tests."""
        return self.run_tool([find_binary("redis-cli") or "redis-cli", "-h", self.host, "-p", str(self.port), *args],
                             what="redis-cli")


class RedisClusterNode(RedisServer):
    kind = "redis-cluster-node"
    port_names = ("main", "bus")
    cluster_node = True


class RedisCluster:
    """Three masters, no replicas, all 16384 slots covered. Nodes can be killed one by one."""

    kind = "redis-cluster"
    size = 3

    def __init__(self, *, root: str | Path, nodes: list[RedisClusterNode], owned: bool = True) -> None:
        self.root = Path(root)
        self.nodes = nodes
        self.owned = owned

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(node.address for node in self.nodes)

    @classmethod
    def create(cls, *, base_dir: str | Path | None = None) -> RedisCluster:
        root = Path(tempfile.mkdtemp(prefix="flare-redis-cluster-", dir=base_dir))
        cluster = cls(root=root, nodes=[])
        try:
            for _ in range(cls.size):
                cluster.nodes.append(RedisClusterNode.create(base_dir=root))
            cluster.nodes[0].run_tool(
                [find_binary("redis-cli") or "redis-cli", "--cluster", "create",
                 *(node.address for node in cluster.nodes), "--cluster-replicas", "0", "--cluster-yes"],
                what="redis-cli --cluster create",
            )
            cluster.wait_ready()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def not_ready_reason(self) -> str | None:
        for node in self.nodes:
            reason = node.not_ready_reason()
            if reason:
                return f"{node.address}: {reason}"
            try:
                info = node.redis_cli("cluster", "info")
            except InfraError as exc:
                return str(exc)
            if "cluster_state:ok" not in info:
                return f"{node.address}: cluster_state not ok"
        return None

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while (reason := self.not_ready_reason()) is not None:
            if time.monotonic() > deadline:
                raise InfraError(f"redis cluster not ready after {timeout:.0f}s: {reason}")
            time.sleep(0.25)

    def is_running(self) -> bool:
        return all(node.is_running() for node in self.nodes)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        self.wait_ready()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def kill(self) -> None:
        for node in self.nodes:
            node.kill()

    def restart(self, *, hard: bool = False) -> None:
        self.kill() if hard else self.stop()
        self.start()

    def destroy(self) -> None:
        for node in self.nodes:
            node.destroy()
        shutil.rmtree(self.root, ignore_errors=True)

    def endpoints(self) -> dict[str, Any]:
        return {"url": self.url, "host": self.host, "port": self.port,
                "addresses": [node.address for node in self.nodes]}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.endpoints(), "root": str(self.root),
                "nodes": [node.to_dict() for node in self.nodes]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RedisCluster:
        return cls(root=data["root"], nodes=[RedisClusterNode.from_dict(n) for n in data["nodes"]], owned=False)

    def __repr__(self) -> str:
        return f"<RedisCluster {self.url}>"
