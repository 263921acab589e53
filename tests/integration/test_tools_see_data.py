"""What Flare writes is visible to tools nobody here wrote: kcat, psql, redis-cli, plain HTTP.

Each test writes through a production adapter and reads back with the server's own
independent client, so an adapter that only agrees with itself cannot pass.
"""

from __future__ import annotations

import asyncio
import urllib.request
import uuid

import pytest

from services.backends.registry import open_cache, open_log, open_messagedb, open_objectstore
from services.common.model import Message

pytestmark = pytest.mark.servers


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


async def test_kcat_reads_records_produced_by_kafkalog(kafka_server, unique):
    log = open_log(kafka_server.url)
    await log.start()
    try:
        topic = f"tools-{unique}"
        await log.create_topic(topic, partitions=1)
        await log.produce_batch(topic, [(b"conv-1", b"hello"), (b"conv-2", "héllo wörld".encode())])
        await log.produce(topic, b"third", key=None, timestamp_ms=1_700_000_000_123)
    finally:
        await log.close()
    out = await asyncio.to_thread(
        kafka_server.kcat, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p|%o|%k|%s|%T\\n")
    rows = [line.split("|") for line in out.splitlines()]
    assert [(p, o, k, v) for p, o, k, v, _ in rows] == [
        ("0", "0", "conv-1", "hello"), ("0", "1", "conv-2", "héllo wörld"), ("0", "2", "", "third"),
    ]
    assert rows[2][4] == "1700000000123"


async def test_psql_sees_rows_written_by_postgres_messagedb(postgres_server, unique):
    url = await asyncio.to_thread(postgres_server.create_database, f"tools_{unique}")
    db = open_messagedb(url)
    await db.start()
    try:
        await db.migrate()
        conversation = f"group:{unique}"
        await db.insert_messages([
            Message(msg_id=1000 + seq, client_msg_id=f"c{seq}", conversation_id=conversation,  # type: ignore[arg-type]
                    sender_id="alice", sender_device="phone", content_type="text",  # type: ignore[arg-type]
                    body={"text": f"hi {seq}"}, created_at=1_700_000_000_000 + seq, seq=seq)
            for seq in (1, 2, 3)
        ])
    finally:
        await db.close()
    out = await asyncio.to_thread(
        postgres_server.psql,
        "SELECT msg_id, seq, sender_id, body->>'text', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') "
        f"FROM messages WHERE conversation_id = 'group:{unique}' ORDER BY seq",
        database=f"tools_{unique}",
    )
    assert [line.split("|") for line in out.splitlines()] == [
        ["1001", "1", "alice", "hi 1", "2023-11-14T22:13:20.001"],
        ["1002", "2", "alice", "hi 2", "2023-11-14T22:13:20.002"],
        ["1003", "3", "alice", "hi 3", "2023-11-14T22:13:20.003"],
    ]
    await asyncio.to_thread(postgres_server.psql, f'DROP DATABASE "tools_{unique}" WITH (FORCE)')


@pytest.mark.parametrize("fixture", ["redis_server", "redis_cluster"])
async def test_redis_cli_sees_hashes_written_by_rediscache(request, fixture, unique):
    server = request.getfixturevalue(fixture)
    cache = open_cache(server.url)
    await cache.start()
    try:
        key = f"route:{unique}"
        await cache.hset(key, {"phone": b"gateway-1", "laptop": b"gateway-2"})
        await cache.set(f"plain:{unique}", b"value", ttl=60)
    finally:
        await cache.close()
    node = server.nodes[0] if fixture == "redis_cluster" else server
    cli = ("-c",) if fixture == "redis_cluster" else ()  # -c follows MOVED to the slot's owner
    fields = (await asyncio.to_thread(node.redis_cli, *cli, "HGETALL", key)).split()
    assert dict(zip(fields[::2], fields[1::2])) == {"phone": "gateway-1", "laptop": "gateway-2"}
    assert (await asyncio.to_thread(node.redis_cli, *cli, "GET", f"plain:{unique}")).strip() == "value"
    assert 0 < int(await asyncio.to_thread(node.redis_cli, *cli, "TTL", f"plain:{unique}")) <= 60


async def test_http_get_on_presigned_url_returns_the_bytes(s3_server, unique):
    store = open_objectstore(s3_server.url_for("flare-tools"))
    await store.start()
    try:
        data = bytes(range(256)) * 64
        await store.put(f"{unique}/photo.bin", data, content_type="image/png")
        url = await store.presigned_get_url(f"{unique}/photo.bin", expires_s=120)
    finally:
        await store.close()

    def fetch() -> tuple[int, str, bytes]:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback S3 test server
            return response.status, response.headers["Content-Type"], response.read()

    status, content_type, body = await asyncio.to_thread(fetch)
    assert (status, content_type, body) == (200, "image/png", data)
