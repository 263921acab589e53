"""Compact frames (docs/protocol.md §12): batch frames, `stored` standing for `received`,
cumulative acks. The same exactly-once, in-order guarantees; fewer frames."""

from __future__ import annotations

import asyncio

from services.common.model import c2c_conversation_id

from .protocol_helpers import send_stored


async def test_compact_client_gets_every_message_once_in_order_and_fewer_frames(flare):
    alice = await flare.client("alice", compact=True)
    bob = await flare.client("bob", compact=True, auto_ack=False)
    plain = await flare.client("bob", "laptop")  # did not ask: never gets a batch
    hello = next(f for f in bob.frames if f["type"] == "hello")
    assert hello.get("compact") is True
    assert "compact" not in next(f for f in plain.frames if f["type"] == "hello")
    conv = c2c_conversation_id("alice", "bob")
    # A burst of 200, each resent after `busy` (§12) until stored: a slow box may shed some.
    # The seqs need not follow send order here, only be gap-free and each message once.
    msg_ids = await send_stored(alice, 200, to="bob")
    got = await bob.wait_count(lambda f: f.get("type") == "message", 200)
    assert [m["seq"] for m in got] == list(range(1, 201))
    assert len({m["msg_id"] for m in got}) == 200
    # Whether pushes coincide in one tick depends on the machine's speed (in split each one
    # arrives over gRPC on its own): that frames waiting together leave as one batch is
    # tests/unit/test_outbound_bytes.py's; here, compact or not, nothing is lost or repeated.
    assert plain.batches == 0
    assert [m["seq"] for m in await plain.wait_count(lambda f: f.get("type") == "message", 200)] == list(range(1, 201))
    # Every send ends `stored` exactly once; a `received` may have been folded into it.
    stored = await alice.wait_count(lambda f: f.get("type") == "ack" and f.get("level") == "stored", 200)
    assert sorted(f["msg_id"] for f in stored) == sorted(msg_ids)
    sent = {f["client_msg_id"] for f in stored}
    assert len(sent) == 200
    for cmid in sent:
        levels = [lv for lv in alice.acks(cmid) if lv != "delivered"]
        assert levels in (["received", "stored"], ["stored"]), (cmid, levels)

    # One cumulative ack of the last seq: DELIVERED for all 200, once each.
    await bob.ack(conv, 200)
    delivered = await alice.wait_count(lambda f: f.get("level") == "delivered", 200)
    assert sorted(f["seq"] for f in delivered) == list(range(1, 201))
    await asyncio.sleep(0.3)
    assert len([f for f in alice.frames if f.get("level") == "delivered"]) == 200


async def test_cumulative_ack_moves_the_cursor_over_everything_before_it(flare):
    alice = await flare.client("alice", compact=True)
    bob = await flare.client("bob", compact=True, auto_ack=False)
    conv = c2c_conversation_id("alice", "bob")
    for i in range(30):
        await alice.send(f"m{i}", conversation_id=conv)
    await bob.wait_count(lambda f: f.get("type") == "message", 30)
    await bob.ack(conv, 30)
    await asyncio.sleep(0.5)  # the cursor write is batched
    await bob.close()
    again = await flare.client("bob", compact=True)
    result = await again.sync()
    assert conv not in result["conversations"] or not result["conversations"][conv]["messages"]
