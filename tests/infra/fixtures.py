"""Session-scoped fixtures that give tests real servers (tests/infra/servers.py).

    def test_x(etcd_server):      etcd_server.url == "etcd://127.0.0.1:PORT"
    redis_server, redis_cluster, postgres_server, kafka_server, minio_server likewise.

Each yields the server handle: `.url`, `.host`, `.port`, `.kill()` (kill -9 of its process
group), `.stop()`, `.start()` / `.restart()` (same port, same data dir). Session servers may be
shared with other test runs (through the endpoints file), so fault tests kill only their own:

    def test_crash(private_server):
        etcd = private_server("etcd")   # started for this test, removed after it
        etcd.kill(); etcd.start()

Servers listed in the endpoints file of `python -m tests.infra up` (FLARE_SERVERS_FILE or
<repo>/.servers/endpoints.json) are reused and left running; otherwise the server is
installed if missing, started for this session, and removed at its end.
If a server cannot be had, the test is skipped with the reason — or, with
FLARE_REQUIRE_SERVERS=1 (CI), fails with it.

Installing happens once, right after collection, for the servers the selected tests use
(all in parallel, outside any per-test timeout: a first MinIO build takes minutes).
"""

from __future__ import annotations

import atexit
import os
import threading

import pytest

from .install import InfraError, ensure
from .servers import load_running, start_server

__all__ = [
    "ServerPool",
    "etcd_server",
    "redis_server",
    "redis_cluster",
    "postgres_server",
    "kafka_server",
    "minio_server",
    "private_server",
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


_FIXTURE_KINDS = {
    "etcd_server": "etcd",
    "redis_server": "redis",
    "redis_cluster": "redis-cluster",
    "postgres_server": "postgres",
    "kafka_server": "kafka",
    "minio_server": "minio",
}


def pytest_collection_finish(session) -> None:
    """Install what the selected tests' server fixtures need before the first test starts."""
    wanted = sorted({kind for item in session.items for name, kind in _FIXTURE_KINDS.items()
                     if name in getattr(item, "fixturenames", ())})
    wanted = [kind for kind in wanted if load_running(kind) is None]
    if not wanted:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    say = reporter.write_line if reporter is not None else print
    try:
        ensure(wanted, log=lambda line: None if line.endswith("ok in 0.0s") else say(f"tests/infra: {line}"))
    except InfraError as exc:
        # The fixtures try again and skip (or, in CI, fail) with the exact reason.
        say(f"tests/infra: install failed: {exc}")


_pool = ServerPool()
atexit.register(_pool.close)  # also when the session dies before fixture teardown


def _require() -> bool:
    return os.environ.get("FLARE_REQUIRE_SERVERS") == "1"


def _unavailable(exc: InfraError):
    if _require():
        raise exc
    pytest.skip(str(exc))


def _server(kind: str):
    try:
        server = _pool.get(kind)
    except InfraError as exc:
        _unavailable(exc)
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


@pytest.fixture
def private_server():
    """A factory of servers only this test uses (for kill -9 and restart); removed after it."""
    started = []

    def make(kind: str):
        try:
            server = start_server(kind)
        except InfraError as exc:
            _unavailable(InfraError(f"{kind} server unavailable: {exc}"))
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.destroy()
