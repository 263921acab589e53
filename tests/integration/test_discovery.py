"""Discovery for the split deployment: the topology as instances come and go, round-robin
and failover over real gRPC servers, the gateway directory fed from the topology."""

from __future__ import annotations

import asyncio
import socket

import pytest

from .grpc_stack import FILTER_RULES
from controlplane.agent import ConfigAgent
from services.common import codec
from services.wiring.discovery import TOPOLOGY_PREFIX, ServicePool, Topology
from services.common.errors import BackendUnavailable, Rejected
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message
from services.wiring.discovered import FILTER, ROUTER, TopologyGatewayDirectory, pooled
from services.filter import FilterService
from services.filter import api as filter_api
from services.filter.client import GrpcFilterClient


def _dead_address() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"  # closed again: connections are refused


async def _eventually(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def _message(text: str) -> Message:
    return Message(msg_id=1, client_msg_id="c1", conversation_id=ConversationId("c2c:alice:bob"),
                   sender_id=UserId("alice"), sender_device=DeviceId("phone"), content_type="text", body=text,
                   created_at=1_700_000_000_000)


async def test_topology_follows_registrations_leases_and_deletes(configstore):
    topology = Topology(configstore)
    changes: list[dict] = []

    async def note() -> None:
        changes.append(topology.instances("router"))

    topology.on_change(note)
    await configstore.put(TOPOLOGY_PREFIX + "router/r1", codec.dumps({"address": "127.0.0.1:1001"}))
    await topology.start()
    try:
        assert topology.instances("router") == {"r1": "127.0.0.1:1001"}
        lease = await configstore.lease_grant(1)
        await configstore.put(TOPOLOGY_PREFIX + "router/r2", codec.dumps({"address": "127.0.0.1:1002"}), lease=lease)
        await configstore.put(TOPOLOGY_PREFIX + "filter/f1", codec.dumps({"address": "in-process"}))  # no gRPC address
        assert await topology.wait_for("router", 2, timeout=5) == {"r1": "127.0.0.1:1001", "r2": "127.0.0.1:1002"}
        assert topology.instances("filter") == {}
        await configstore.delete(TOPOLOGY_PREFIX + "router/r1")
        await _eventually(lambda: "r1" not in topology.instances("router"))
        await _eventually(lambda: topology.instances("router") == {}, timeout=10)  # r2's lease expired
        assert changes[-1] == {}
    finally:
        await topology.stop()


async def test_agent_registration_is_what_discovery_sees(configstore, tmp_path):
    topology = Topology(configstore)
    await topology.start()
    # No control plane here (its link keeps retrying): only the self-registration matters.
    agent = ConfigAgent("store", "store-7", "127.0.0.1:4242", {}, tmp_path / "agent", _NeverConnects(),
                        registry=configstore, lease_ttl_s=2)
    await agent.start()
    try:
        assert await topology.wait_for("store", timeout=5) == {"store-7": "127.0.0.1:4242"}
    finally:
        await agent.stop()
        await topology.stop()


class _NeverConnects:
    def connect(self, hello):
        raise BackendUnavailable("no control plane in this test")


async def test_pool_round_robins_and_fails_over_to_a_live_instance(configstore):
    live = [await filter_api.serve(FilterService(FILTER_RULES)) for _ in range(2)]
    for index, server in enumerate(live):
        await configstore.put(f"{TOPOLOGY_PREFIX}filter/live-{index}", codec.dumps({"address": server.address}))
    await configstore.put(f"{TOPOLOGY_PREFIX}filter/dead", codec.dumps({"address": _dead_address()}))
    topology = Topology(configstore)
    filters = pooled(topology, FILTER)
    await topology.start()
    try:
        used: list[str] = []
        original = GrpcFilterClient.check

        async def spy(self, message):
            used.append(self.target)
            return await original(self, message)

        GrpcFilterClient.check = spy  # type: ignore[method-assign]
        try:
            for _ in range(6):  # every call lands on a live instance, whichever it starts at
                assert (await filters.check(_message("darn it"))).action == "mask"
        finally:
            GrpcFilterClient.check = original  # type: ignore[method-assign]
        answered = {t for t in used if t != topology.instances("filter")["dead"]}
        assert answered == {s.address for s in live}
    finally:
        await filters.close()
        await topology.stop()
        for server in live:
            await server.stop(0)


async def test_an_error_the_instance_answers_is_not_retried_elsewhere(configstore):
    server = await filter_api.serve(FilterService(FILTER_RULES))
    await configstore.put(f"{TOPOLOGY_PREFIX}filter/f1", codec.dumps({"address": server.address}))
    topology = Topology(configstore)
    pool = ServicePool(topology, "filter", GrpcFilterClient)
    await topology.start()
    calls = 0

    async def refuse(client: GrpcFilterClient):
        nonlocal calls
        calls += 1
        raise Rejected("no")

    try:
        with pytest.raises(Rejected):
            await pool.call(refuse)
        assert calls == 1
    finally:
        await pool.close()
        await topology.stop()
        await server.stop(0)


async def test_no_instance_is_backend_unavailable_and_the_gateway_directory_follows(configstore):
    topology = Topology(configstore)
    routers = pooled(topology, ROUTER)
    gateways = TopologyGatewayDirectory(topology)
    await topology.start()
    try:
        with pytest.raises(BackendUnavailable, match="no router instance"):
            await routers.join_group("alice", "group:g")
        assert gateways.get("gw-1") is None
        await configstore.put(f"{TOPOLOGY_PREFIX}gateway/gw-1", codec.dumps({"address": "127.0.0.1:9"}))
        await _eventually(lambda: gateways.get("gw-1") is not None)
        assert gateways.get("gw-1").gateway_id == "gw-1"
        await configstore.delete(f"{TOPOLOGY_PREFIX}gateway/gw-1")
        await _eventually(lambda: gateways.get("gw-1") is None)
    finally:
        await routers.close()
        await gateways.close()
        await topology.stop()
