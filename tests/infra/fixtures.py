"""Session-scoped fixtures that give tests real servers (tests/infra/servers.py).

    def test_x(etcd_server):      etcd_server.url == "etcd://127.0.0.1:PORT"
    redis_server, redis_cluster, postgres_server, kafka_server, minio_server likewise.

Each yields the server handle: `.url`, `.host`, `.port`, and for fault tests `.kill()`
(kill -9 of its process group), `.stop()`, `.start()` / `.restart()` (same port, same
data dir). A test that kills a session server must start it again before it ends.

Servers listed in the endpoints file of `python -m tests.infra up` (FLARE_SERVERS_FILE or
<repo>/.servers/endpoints.json) are reused and left running; otherwise the server is
installed if missing, started for this session, and removed at its end.
If a server cannot be had, the test is skipped with the reason — or, with
FLARE_REQUIRE_SERVERS=1 (CI), fails with it.
"""

from __future__ import annotations

import atexit
import os
import threading

import pytest

from .install import InfraError
from .servers import load_running, start_server

__all__ = [
    "ServerPool",
    "etcd_server",
    "redis_server",
    "redis_cluster",
    "postgres_server",
    "kafka_server",
    "minio_server",
]


class ServerPool:
    """One server per kind for the whole session, started on first use."""

    def __init__(self) -> None:
        self._servers: dict[str, object] = {}
        self._failures: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, kind: str):
        with self._lock:
            if kind in self._failures:
                raise InfraError(self._failures[kind])
            if kind not in self._servers:
                try:
                    self._servers[kind] = load_running(kind) or start_server(kind)
                except InfraError as exc:
                    self._failures[kind] = f"{kind} server unavailable: {exc}"
                    raise InfraError(self._failures[kind]) from exc
            return self._servers[kind]

    def close(self) -> None:
        with self._lock:
            for server in self._servers.values():
                if getattr(server, "owned", False):
                    server.destroy()
            self._servers.clear()


_pool = ServerPool()
atexit.register(_pool.close)  # also when the session dies before fixture teardown


def _require() -> bool:
    return os.environ.get("FLARE_REQUIRE_SERVERS") == "1"


def _server(kind: str):
    try:
        server = _pool.get(kind)
    except InfraError as exc:
        if _require():
            raise
        pytest.skip(str(exc))
    if not server.is_running():
        server.start()  # a fault test left it down
    return server


@pytest.fixture(scope="session")
def _server_pool():
    yield _pool
    _pool.close()


@pytest.fixture(scope="session")
def etcd_server(_server_pool):
    return _server("etcd")


@pytest.fixture(scope="session")
def redis_server(_server_pool):
    return _server("redis")


@pytest.fixture(scope="session")
def redis_cluster(_server_pool):
    return _server("redis-cluster")


@pytest.fixture(scope="session")
def postgres_server(_server_pool):
    return _server("postgres")


@pytest.fixture(scope="session")
def kafka_server(_server_pool):
    return _server("kafka")


@pytest.fixture(scope="session")
def minio_server(_server_pool):
    return _server("minio")
