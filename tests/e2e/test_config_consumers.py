"""Router, session and store take their documents from the control plane (ARCHITECTURE §7)."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidInput
from services.delivery.keys import recent_key

pytestmark = pytest.mark.monolith_only  # reads the in-process services' applied values


async def _applied(flare, kind: str, version: int) -> None:
    for agent in flare.monolith.agents:
        if kind in agent.kinds:
            await agent.wait_for_version(kind, version)


async def test_routing_document_reaches_router_and_session_and_deliveries_still_flow(flare):
    cp = flare.monolith.controlplane
    result = await cp.apply_manifest({"kind": "routing", "spec": {
        "route_cache_ttl": 7, "conn_pool_size": 2, "batch_size": 3}})
    await _applied(flare, "routing", result.version)
    assert flare.monolith.router.fanout.batch_size == 3
    assert flare.monolith.router.fanout.max_in_flight == 2
    assert flare.monolith.session._route_cache.ttl_s == 7
    users = [await flare.client(f"u{i}", f"dev{j}") for i in range(4) for j in range(2)]
    await users[0].send_frame({"type": "group_create", "group_id": "batchy", "members": ["u1", "u2", "u3"]})
    await users[0].wait_for(lambda f: f["type"] == "group_created")
    for n in range(5):
        await users[0].send(f"m{n}", conversation_id="group:batchy")
    for device in users:  # 8 devices per message, pushed 3 at a time
        got = await device.wait_count(lambda f: f.get("type") == "message", 5)
        assert [m["seq"] for m in got] == [1, 2, 3, 4, 5]


async def test_tiering_l0_ttl_applies_to_new_messages(flare):
    result = await flare.monolith.controlplane.apply_manifest({"kind": "tiering", "spec": {"l0_ttl": "90s"}})
    await _applied(flare, "tiering", result.version)
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    await alice.send("short-lived in L0", to="bob")
    msg = await bob.wait_for(lambda f: f.get("type") == "message")
    ttl = await flare.monolith.cache.ttl(recent_key(msg["conversation_id"], msg["seq"]))
    assert ttl is not None and 60 < ttl <= 90
    assert flare.monolith.store.tiering.l0_ttl == 90


async def test_services_refuse_documents_they_cannot_apply(flare):
    with pytest.raises(InvalidInput):
        await flare.monolith.router.apply_config("routing", {"batch_size": 0})
    with pytest.raises(InvalidInput):
        await flare.monolith.store.apply_config("routing", {})
    assert flare.monolith.router.fanout.batch_size == 1000  # unchanged
