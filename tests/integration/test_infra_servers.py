"""The test servers themselves: reachable with their own tools, and restartable after kill -9."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.servers


def test_etcd_survives_kill_and_restart(etcd_server):
    assert etcd_server.url == f"etcd://127.0.0.1:{etcd_server.port}"
    etcd_server.etcdctl("put", "/flare/test/infra", "v1")
    etcd_server.kill()
    assert not etcd_server.is_running()
    etcd_server.start()
    assert etcd_server.etcdctl("get", "--print-value-only", "/flare/test/infra").strip() == "v1"


def test_redis_answers_and_restarts(redis_server):
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}"
    assert redis_server.redis_cli("PING").strip() == "PONG"
    redis_server.restart(hard=True)
    assert redis_server.redis_cli("PING").strip() == "PONG"


def test_redis_cluster_covers_all_slots(redis_cluster):
    assert redis_cluster.url.startswith("redis+cluster://")
    assert len(redis_cluster.nodes) == 3
    info = redis_cluster.nodes[0].redis_cli("cluster", "info")
    assert "cluster_slots_assigned:16384" in info and "cluster_state:ok" in info


def test_postgres_survives_kill_and_restart(postgres_server):
    assert postgres_server.url == f"postgresql://postgres@127.0.0.1:{postgres_server.port}/postgres"
    url = postgres_server.create_database("infra_check")
    assert url.endswith("/infra_check")
    postgres_server.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (42)", database="infra_check")
    postgres_server.kill()
    postgres_server.start()
    assert postgres_server.psql("SELECT v FROM t", database="infra_check").strip() == "42"
    postgres_server.psql("DROP DATABASE infra_check WITH (FORCE)")
