"""The test servers themselves: reachable with their own tools, and restartable after kill -9."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.servers


def test_session_servers_answer_their_own_tools(etcd_server, redis_server, postgres_server, kafka_server,
                                                s3_server):
    assert etcd_server.url == f"etcd://127.0.0.1:{etcd_server.port}"
    etcd_server.etcdctl("put", "/flare/test/infra", "v1")
    assert etcd_server.etcdctl("get", "--print-value-only", "/flare/test/infra").strip() == "v1"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}"
    assert redis_server.redis_cli("PING").strip() == "PONG"
    assert postgres_server.psql("SELECT 1").strip() == "1"
    assert kafka_server.url == f"kafka://127.0.0.1:{kafka_server.port}"
    assert "1 brokers" in kafka_server.kcat("-L")
    assert s3_server.url.startswith("s3://") and s3_server.url.endswith(f"@127.0.0.1:{s3_server.port}/flare")
    assert s3_server.client().bucket_exists("flare")  # made while it started up
    assert not s3_server.client().bucket_exists("flare-never-made")


def test_etcd_survives_kill_and_restart(private_server):
    etcd = private_server("etcd")
    etcd.etcdctl("put", "/flare/test/infra", "v1")
    etcd.kill()
    assert not etcd.is_running()
    etcd.start()
    assert etcd.etcdctl("get", "--print-value-only", "/flare/test/infra").strip() == "v1"


def test_redis_restarts_on_the_same_port(private_server):
    redis = private_server("redis")
    port = redis.port
    redis.restart(hard=True)
    assert redis.port == port
    assert redis.redis_cli("PING").strip() == "PONG"


def test_redis_cluster_covers_all_slots(redis_cluster):
    assert redis_cluster.url.startswith("redis+cluster://")
    assert len(redis_cluster.nodes) == 3
    info = redis_cluster.nodes[0].redis_cli("cluster", "info")
    assert "cluster_slots_assigned:16384" in info and "cluster_state:ok" in info


def test_postgres_survives_kill_and_restart(private_server):
    postgres = private_server("postgres")
    assert postgres.url == f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
    url = postgres.create_database("infra_check")
    assert url.endswith("/infra_check")
    postgres.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (42)", database="infra_check")
    postgres.kill()
    postgres.start()
    assert postgres.psql("SELECT v FROM t", database="infra_check").strip() == "42"


async def test_kafka_keeps_records_across_kill_and_restart(private_server):
    from services.backends.kafka.log import KafkaLog

    kafka = await asyncio.to_thread(private_server, "kafka")
    log = KafkaLog.from_url(kafka.url)
    await log.start()
    try:
        await log.create_topic("crash", partitions=1)
        await log.produce_batch("crash", [(b"k", b"before-kill-1"), (b"k", b"before-kill-2")])
    finally:
        await log.close()
    await asyncio.to_thread(kafka.kill)
    await asyncio.to_thread(kafka.start)
    out = await asyncio.to_thread(kafka.kcat, "-C", "-t", "crash", "-o", "beginning", "-e", "-q")
    assert out.split() == ["before-kill-1", "before-kill-2"]


def test_redis_cluster_node_rejoins_after_kill(private_server):
    cluster = private_server("redis-cluster")
    cluster.nodes[1].kill()
    cluster.nodes[1].start()
    cluster.wait_ready()
    assert "cluster_state:ok" in cluster.nodes[1].redis_cli("cluster", "info")


def test_s3_server_takes_a_write_in_many_buckets(s3_server):
    # The suite makes a bucket per test; SeaweedFS's default volume growth ran out of volume
    # slots at the 15th bucket and answered every later write with HTTP 500.
    import io
    import uuid

    client = s3_server.client()
    names = [f"many-{uuid.uuid4().hex[:12]}-{i}" for i in range(30)]
    try:
        for name in names:
            client.make_bucket(name)
            client.put_object(name, "probe", io.BytesIO(b"written"), 7)
        assert [client.get_object(name, "probe").read() for name in names] == [b"written"] * 30
    finally:
        for name in names:
            if client.bucket_exists(name):
                for obj in client.list_objects(name):
                    client.remove_object(name, obj.object_name)
                client.remove_bucket(name)
