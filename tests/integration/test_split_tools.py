"""After real clients chat through the split deployment, tools nobody here wrote see the data:
kcat reads the messages from the Kafka topic, psql sees the rows, redis-cli sees the
`route:<user>` hashes, and the S3 server serves an object put at the deployment's object store."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from services.backends.registry import open_objectstore
from services.common.model import c2c_conversation_id
from services.wiring.split import SplitDeployment
from tests.e2e.wsclient import WsClient

from .split_harness import SERVER_KINDS, split_on

pytestmark = pytest.mark.servers


@pytest.fixture
def servers(request) -> dict:
    return {kind: request.getfixturevalue(f"{kind}_server") for kind in SERVER_KINDS}


async def test_tools_see_what_the_split_deployment_wrote(servers, tmp_path):
    async with split_on(tmp_path, servers) as split:
        deployment: SplitDeployment = split.deployment
        # Started means connected: every instance already sees every planned instance (a
        # gateway used to answer `unavailable` for a moment: no sync instance registered yet).
        planned: dict[str, int] = {}
        for process in deployment.processes:
            if process.service != "controlplane":
                planned[process.service] = planned.get(process.service, 0) + 1
        for process in deployment.processes:
            if process.service != "controlplane":
                with urllib.request.urlopen(process.health_url, timeout=5) as response:
                    assert json.loads(response.read())["peers"] == planned, process.instance_id
        alice = await WsClient(deployment.gateway_urls[0], deployment.secret, "alice").connect()
        bob = await WsClient(deployment.gateway_urls[1], deployment.secret, "bob", "laptop").connect()
        try:
            sent = [await alice.send(f"hello {i}", to="bob") for i in range(5)]
            await bob.wait_count(lambda f: f.get("type") == "message", 5)
            conversation = c2c_conversation_id("alice", "bob")

            records = await asyncio.to_thread(
                servers["kafka"].kcat, "-C", "-t", split.topic, "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n")
            rows = [line.split("\t", 1) for line in records.splitlines() if line]
            assert {key for key, _ in rows} == {conversation}
            assert sorted(json.loads(value)["client_msg_id"] for _, value in rows) == sorted(sent)

            out = await asyncio.to_thread(
                servers["postgres"].psql,
                f"SELECT seq, sender_id, client_msg_id FROM messages WHERE conversation_id = '{conversation}' "
                "ORDER BY seq", database=split.database)
            assert [line.split("|") for line in out.splitlines()] == [
                [str(i + 1), "alice", cmid] for i, cmid in enumerate(sent)]

            fields = (await asyncio.to_thread(
                servers["redis"].redis_cli, "-n", str(split.redis_db), "HGETALL", "route:bob")).split("\n")
            route = dict(zip(fields[::2], fields[1::2]))
            assert list(route) == ["laptop"]
            assert json.loads(route["laptop"])["gateway_id"] == "gateway-2"
        finally:
            await alice.close()
            await bob.close()

        # No split service writes media yet: put through the adapter at the deployment's URL
        # and fetch it back with a plain HTTP GET, as a client would.
        store = open_objectstore(deployment.config.backend_url("objectstore"))
        await store.start()
        try:
            await store.put(f"{split.name}/avatar.png", b"\x89PNG-bytes", content_type="image/png")
            url = await store.presigned_get_url(f"{split.name}/avatar.png", expires_s=60)
        finally:
            await store.close()

        def fetch() -> tuple[int, bytes]:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback S3 test server
                return response.status, response.read()

        assert await asyncio.to_thread(fetch) == (200, b"\x89PNG-bytes")
