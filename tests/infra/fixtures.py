"""Session-scoped fixtures that give tests real servers (tests/infra/servers.py).

    def test_x(etcd_server):      etcd_server.url == "etcd://127.0.0.1:PORT"
    redis_server, redis_cluster, postgres_server, kafka_server, s3_server likewise.

Each yields the server handle: `.url`, `.host`, `.port`, `.kill()` (kill -9 of its process
group), `.stop()`, `.start()` / `.restart()` (same port, same data dir). Session servers may be
shared with other test runs (through the endpoints file), so fault tests kill only their own:

    def test_crash(private_server):
        etcd = private_server("etcd")   # started for this test, removed after it
        etcd.kill(); etcd.start()

Servers listed in the endpoints file of `python -m tests.infra up` (FLARE_SERVERS_FILE or
<repo>/.servers/endpoints.json) are reused and left running; otherwise the server is started
when a test first asks for it, for this session, and removed at its end.
If a server cannot be had, the test is skipped with the reason — or, with
FLARE_REQUIRE_SERVERS=1 (CI), fails with it.

Nothing here installs: collecting tests must stay instant and side-effect free. Software
comes from `python -m tests.infra install` (tests/run.sh runs it); a server that is not
installed is "unavailable" with a reason that says which command installs it.
"""

from __future__ import annotations

import atexit
import os
import threading

import pytest

from .install import InfraError, missing
from .servers import load_running, start_server

__all__ = [
    "ServerPool",
    "etcd_server",
    "redis_server",
    "redis_cluster",
    "postgres_server",
    "kafka_server",
    "s3_server",
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
                    self._servers[kind] = load_running(kind) or _start_installed(kind)
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


def _start_installed(kind: str):
    """Start a server of this kind if its software is installed; never install it here."""
    lacking = missing(kind)
    if lacking:
        raise InfraError(f"{kind} is not installed (missing {', '.join(lacking)}); "
                         f"run `python -m tests.infra install --only {kind}` (tests/run.sh does)")
    return start_server(kind, install=False)


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
def s3_server(_server_pool):
    """SeaweedFS's S3 gateway (the S3 adapter's real server in tests)."""
    return _server("s3")


@pytest.fixture
def private_server():
    """A factory of servers only this test uses (for kill -9 and restart); removed after it."""
    started = []

    def make(kind: str):
        try:
            server = _start_installed(kind)
        except InfraError as exc:
            _unavailable(InfraError(f"{kind} server unavailable: {exc}"))
        started.append(server)
        return server

    yield make
    for server in reversed(started):
        server.destroy()
