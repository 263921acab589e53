"""tests/infra without servers: skip-or-fail policy, failure memory, the endpoints file,
collection that installs nothing, Kafka cluster ids, port pairs."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra import base, fixtures, servers
from tests.infra.install import InfraError, missing
from tests.infra.kafka_broker import new_cluster_id

ROOT = Path(__file__).resolve().parents[2]


def test_unavailable_server_skips_locally_and_fails_in_ci(monkeypatch):
    reason = InfraError("etcd server unavailable: apt-get install etcd-server failed (exit 100)")
    monkeypatch.delenv("FLARE_REQUIRE_SERVERS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="exit 100"):
        fixtures._unavailable(reason)
    monkeypatch.setenv("FLARE_REQUIRE_SERVERS", "1")
    with pytest.raises(InfraError, match="exit 100"):
        fixtures._unavailable(reason)


def test_pool_tries_a_failing_server_once_per_session(monkeypatch):
    calls = []

    def failing(kind, *, install):
        assert install is False  # fixtures never install
        calls.append(kind)
        raise InfraError("kafka not ready after 120s")

    monkeypatch.setattr(fixtures, "start_server", failing)
    monkeypatch.setattr(fixtures, "load_running", lambda kind: None)
    monkeypatch.setattr(fixtures, "missing", lambda kind: [])
    pool = fixtures.ServerPool()
    for _ in range(3):
        with pytest.raises(InfraError, match="kafka server unavailable: kafka not ready after 120s"):
            pool.get("kafka")
    assert calls == ["kafka"]


def test_endpoints_file_round_trip(tmp_path, monkeypatch):
    path = tmp_path / "endpoints.json"
    monkeypatch.setenv("FLARE_SERVERS_FILE", str(path))
    assert servers.endpoints_file() == path
    assert servers.load_endpoints() == {}
    redis = servers.server_class("redis")(root=tmp_path / "r", ports={"main": 6390}, pid=None)
    servers.save_endpoints({"redis": redis.to_dict()})
    loaded = servers.server_class("redis").from_dict(servers.load_endpoints()["redis"])
    assert (loaded.url, loaded.owned) == ("redis://127.0.0.1:6390", False)
    assert servers.load_running("redis") is None  # nothing listens there
    assert servers.load_running("etcd") is None


def test_unknown_kind_is_refused():
    with pytest.raises(InfraError, match="unknown server kind 'mongo'"):
        servers.server_class("mongo")


def test_a_server_that_is_not_installed_is_unavailable_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setenv("FLARE_INFRA_CACHE", str(tmp_path / "cache"))  # empty: nothing built there
    monkeypatch.setenv("FLARE_SERVERS_FILE", str(tmp_path / "endpoints.json"))
    started = []
    monkeypatch.setattr(fixtures, "start_server", lambda kind, **kw: started.append(kind))
    assert any(item.startswith("SeaweedFS weed ") for item in missing("s3"))
    pool = fixtures.ServerPool()
    with pytest.raises(InfraError, match=r"s3 is not installed \(missing SeaweedFS weed v0\.0\.0-.*\); "
                                         r"run `python -m tests.infra install --only s3`"):
        pool.get("s3")
    assert started == []


def test_collecting_tests_installs_nothing(tmp_path):
    """`pytest --collect-only` with an empty infra cache leaves it empty: no apt, Maven or go run."""
    cache = tmp_path / "cache"
    env = {**os.environ, "FLARE_INFRA_CACHE": str(cache), "FLARE_SERVERS_FILE": str(tmp_path / "none.json"),
           "HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         # fixtures requested by name (the infra tests) and through getfixturevalue (the contracts)
         "tests/integration/test_infra_servers.py", "tests/integration/test_tools_see_data.py",
         "tests/contract/test_objectstore.py", "tests/contract/test_log.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "test_session_servers_answer_their_own_tools" in proc.stdout and "[s3]" in proc.stdout
    assert not cache.exists() or list(cache.rglob("*")) == []
    assert not (tmp_path / "home").exists()  # nor anything under $HOME (~/.m2, ~/go, ~/.cache)


def test_kafka_cluster_ids_never_start_with_a_dash():
    ids = [new_cluster_id() for _ in range(20_000)]  # the old way: ~313 would start with '-'
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids)
    for cluster_id in ids[:100]:
        assert len(cluster_id) == 22 and len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    assert any("-" in i[1:] for i in ids)  # still the full URL-safe alphabet, only not leading


def test_port_pairs_leave_the_derived_port_free():
    port = base.free_port_pair(10000)
    assert port + 10000 <= 65535
    for candidate in (port, port + 10000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", candidate))  # raises if taken
    assert base.free_port() not in (port, port + 10000)
