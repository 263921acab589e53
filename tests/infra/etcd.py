"""etcd (Debian etcd-server 3.4): one member on loopback ports."""

from __future__ import annotations

import json
import urllib.request

from .base import Server
from .install import find_binary

__all__ = ["EtcdServer"]


class EtcdServer(Server):
    kind = "etcd"
    port_names = ("main", "peer")
    start_timeout = 30.0

    @property
    def url(self) -> str:
        return f"etcd://{self.address}"

    @property
    def client_url(self) -> str:
        return f"http://{self.address}"

    def command(self) -> list[str]:
        peer = f"http://{self.host}:{self.ports['peer']}"
        return [
            find_binary("etcd") or "etcd",
            "--name", "default",
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"default={peer}",
            "--initial-cluster-state", "new",
            "--logger", "zap",
            "--log-level", "warn",
            # The control plane's largest document (MAX_DOCUMENT_BYTES, 32 MiB) plus the
            # request around it; etcd's default of 1.5 MiB refuses a 100k-word filter list.
            "--max-request-bytes", str(33 * 1024 * 1024),
        ]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.pop("ETCDCTL_API", None)
        return env

    def not_ready_reason(self) -> str | None:
        try:
            with urllib.request.urlopen(f"{self.client_url}/health", timeout=2) as response:  # noqa: S310
                body = json.loads(response.read())
        except (OSError, ValueError) as exc:
            return f"/health: {exc}"
        return None if body.get("health") == "true" else f"/health says {body}"

    def etcdctl(self, *args: str) -> str:
        """Run etcdctl (v3 API) against this member: the independent client for tests."""
        return self.run_tool([find_binary("etcdctl") or "etcdctl", f"--endpoints={self.address}", *args],
                             what="etcdctl", env={"ETCDCTL_API": "3"})

    def endpoints(self) -> dict:
        return {**super().endpoints(), "client_url": self.client_url}
