"""Overload is shed, not queued: a send the core cannot take in time is answered `busy`
with a `retry_after`, is not stored, and the same send passes once the backlog is gone."""

from __future__ import annotations

import asyncio

import pytest

from services.common.metrics import SENDS_SHED
from services.common.model import c2c_conversation_id


def _shed_by_gateway() -> float:
    return SENDS_SHED.labels("gateway")._value.get()


@pytest.mark.monolith_only
async def test_busy_with_retry_after_then_the_resend_is_stored_once(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    conv = c2c_conversation_id("alice", "bob")
    backlog = flare.monolith.delivery.backlog
    limits = backlog.min_backlog, backlog.max_backlog
    backlog.min_backlog = backlog.max_backlog = 0  # as if delivery had stalled with messages waiting
    cmid = await alice.send("hi", conversation_id=conv)
    error = await alice.wait_for(lambda f: f.get("type") == "error" and f.get("ref") == cmid)
    assert error["code"] == "busy"
    assert 0 < error["details"]["retry_after"] <= 5
    assert "stored" not in alice.acks(cmid)
    # The gateway holds off for a moment: the next send is refused before `received`.
    second = await alice.send("again", conversation_id=conv)
    refused = await alice.wait_for(lambda f: f.get("type") == "error" and f.get("ref") == second)
    assert refused["code"] == "busy" and alice.acks(second) == []
    backlog.min_backlog, backlog.max_backlog = limits
    await asyncio.sleep(error["details"]["retry_after"])
    await alice.send("hi", conversation_id=conv, client_msg_id=cmid)
    await alice.wait_for(lambda f: f.get("level") == "stored" and f.get("client_msg_id") == cmid)
    got = await bob.wait_for(lambda f: f.get("type") == "message")
    assert got["client_msg_id"] == cmid and got["seq"] == 1
    await asyncio.sleep(0.2)
    assert len(bob.messages()) == 1
    assert await flare.count_messages(conv) == 1


@pytest.mark.monolith_only
async def test_a_resend_of_a_stored_message_is_answered_even_while_the_gateway_sheds(flare):
    """§12: nothing that got `stored` is ever shed — its resend costs nothing more, so it
    gets its `stored` (duplicate) while new sends get `busy`."""
    alice = await flare.client("alice")
    conv = c2c_conversation_id("alice", "bob")
    cmid = await alice.send("kept", conversation_id=conv)
    first = await alice.wait_for(lambda f: f.get("level") == "stored" and f.get("client_msg_id") == cmid)
    gate = flare.monolith.gateway.gate
    limit, gate.max_loop_lag_ms = gate.max_loop_lag_ms, -1.0  # as if the loop ran late
    try:
        fresh = await alice.send("new", conversation_id=conv)
        refused = await alice.wait_for(lambda f: f.get("type") == "error" and f.get("ref") == fresh)
        assert refused["code"] == "busy"
        shed_so_far = _shed_by_gateway()
        await alice.send("kept", conversation_id=conv, client_msg_id=cmid)
        again = await alice.wait_for(lambda f: f.get("level") == "stored" and f.get("client_msg_id") == cmid
                                     and f is not first)
        assert again["msg_id"] == first["msg_id"] and again["duplicate"] is True
        assert _shed_by_gateway() == shed_so_far  # answered, so not counted as shed
    finally:
        gate.max_loop_lag_ms = limit
    # `stored` means in the log; the MessageDB row follows when the store persists it.
    for _ in range(200):
        if await flare.count_messages(conv):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert await flare.count_messages(conv) == 1  # once: the resend and the shed send added none
