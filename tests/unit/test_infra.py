"""tests/infra without servers: skip-or-fail policy, failure memory, the endpoints file."""

from __future__ import annotations

import pytest

from tests.infra import fixtures, servers
from tests.infra.install import InfraError


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

    def failing(kind):
        calls.append(kind)
        raise InfraError("kafka not ready after 120s")

    monkeypatch.setattr(fixtures, "start_server", failing)
    monkeypatch.setattr(fixtures, "load_running", lambda kind: None)
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
