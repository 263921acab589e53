"""Issue 9, items 3-6: every promise docs/protocol.md makes about one message's life holds
for a client that follows it: a resend gets the original msg_id (even after kill -9), read
receipts and delivered go where documented, recall and delete as sync returns them."""

from __future__ import annotations

import asyncio

from services.delivery.keys import dedup_key

from .protocol_helpers import AB, create_group, send_stored, wait_persisted
from .wsclient import WsClient


# -- 3. a resend always gets the original msg_id --------------------------------------------

async def test_3_a_resend_after_the_cache_lost_the_key_gets_the_original_msg_id(flare):
    alice = await flare.client("alice")
    await flare.client("bob")
    await alice.send("once", to="bob", client_msg_id="resend-me")
    first = await alice.wait_for(lambda f: f.get("level") == "stored")
    await wait_persisted(flare, AB, 1)
    await flare.forget_cache_key(dedup_key("alice", "resend-me"))  # expired, or the cache restarted
    await alice.send_frame({"type": "send", "client_msg_id": "resend-me", "to": "bob", "body": "once", "id": "r2"})
    received = await alice.wait_for(lambda f: f.get("level") == "received" and f.get("ref") == "r2")
    stored = await alice.wait_for(lambda f: f.get("level") == "stored" and f.get("ref") == "r2")
    assert received["msg_id"] == stored["msg_id"] == first["msg_id"]
    assert received["duplicate"] is True and stored["duplicate"] is True
    await asyncio.sleep(0.3)
    assert await flare.count_messages(AB) == 1


async def test_3_received_of_a_resend_carries_the_original_msg_id(flare):
    alice = await flare.client("alice")
    await flare.client("bob")
    await alice.send("x", to="bob", client_msg_id="same")
    await alice.wait_for(lambda f: f.get("level") == "stored")
    await alice.send("x", to="bob", client_msg_id="same")
    received = await alice.wait_count(lambda f: f.get("level") == "received", 2)
    assert received[0]["msg_id"] == received[1]["msg_id"]
    assert [r["duplicate"] for r in received] == [False, True]


async def test_3_a_resend_after_kill_9_gets_the_original_msg_id(tmp_path):
    """The monolith's cache is in memory: after a kill -9 only the log and the MessageDB know."""
    import os
    import signal

    from tests.infra.base import free_port

    from .test_crash_recovery import _start

    data_dir, port = tmp_path / "flare", free_port()
    proc = _start(data_dir, port)
    url = f"ws://127.0.0.1:{port}/ws"
    secret = (data_dir / "token.secret").read_bytes().strip()
    try:
        alice = await WsClient(url, secret, "alice", auto_ack=False).connect()
        cmids = [await alice.send(f"burst {i}", to="bob") for i in range(200)]
        stored = await alice.wait_count(lambda f: f.get("level") == "stored", 200, timeout=60)
        original = {a["client_msg_id"]: a["msg_id"] for a in stored}
        os.killpg(proc.pid, signal.SIGKILL)  # right after the last STORED: the tail may be unpersisted
        proc.wait()
        await alice.close()
        proc = _start(data_dir, port)
        again = await WsClient(url, secret, "alice", auto_ack=False).connect()
        for cmid in (cmids[-1], cmids[0]):  # the newest (maybe still only in the log) and the oldest
            await again.send_frame({"type": "send", "client_msg_id": cmid, "to": "bob", "body": "again"})
        acks = await again.wait_count(lambda f: f.get("type") == "ack" and f["level"] in ("received", "stored"), 4,
                                      timeout=30)
        for ack in acks:
            assert ack["msg_id"] == original[ack["client_msg_id"]], ack
            assert ack["duplicate"] is True, ack
        bob = await WsClient(url, secret, "bob", auto_ack=False).connect()
        got = await bob.sync_all()
        assert sorted(m["msg_id"] for m in got[AB]) == sorted(original.values())
        await again.close()
        await bob.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


# -- 4. read receipts: the event to the other members, a `read` ack to the sender only ---------

async def test_4_read_receipts_go_to_others_and_the_sender_and_never_move_back(flare):
    alice = await flare.client("alice")
    alice_tablet = await flare.client("alice", "tablet")
    bob = await flare.client("bob")
    carol = await flare.client("carol")  # sent nothing
    await create_group(alice, "trio", members=["bob", "carol"])
    for i in range(3):
        await alice.send(f"m{i}", conversation_id="group:trio")
    await bob.wait_count(lambda f: f.get("type") == "message", 3)
    await bob.send_frame({"type": "read", "conversation_id": "group:trio", "seq": 3})
    read_ack = await alice.wait_for(lambda f: f.get("type") == "ack" and f["level"] == "read")
    assert (read_ack["seq"], read_ack["user_id"]) == (3, "bob")
    for member in (alice, alice_tablet, carol):
        event = await member.wait_for(lambda f: f.get("type") == "event" and f["sync_type"] == "read")
        assert (event["actor_id"], event["seq"]) == ("bob", 3)
    await bob.send_frame({"type": "read", "conversation_id": "group:trio", "seq": 1})  # backwards: nothing
    await bob.send_frame({"type": "heartbeat", "id": "hb"})
    await bob.wait_for(lambda f: f.get("ref") == "hb")
    await asyncio.sleep(0.3)
    assert not [f for f in bob.frames if f.get("type") == "event" and f["sync_type"] == "read"]
    assert not [f for f in carol.frames if f.get("type") == "ack" and f.get("level") == "read"]
    assert not [f for f in alice_tablet.frames if f.get("type") == "ack" and f.get("level") == "read"]
    assert len([f for f in alice.frames if f.get("type") == "ack" and f.get("level") == "read"]) == 1
    assert len([f for f in carol.frames if f.get("type") == "event" and f["sync_type"] == "read"]) == 1


# -- 5. delivered goes to the device that sent the message ------------------------------------

async def test_5_delivered_goes_to_the_sending_device_only(flare):
    phone = await flare.client("alice", "phone")
    laptop = await flare.client("alice", "laptop")
    bob = await flare.client("bob")
    cmid = await phone.send("from the phone", to="bob")
    await bob.wait_for(lambda f: f.get("type") == "message")
    delivered = await phone.wait_for(lambda f: f.get("level") == "delivered" and f["client_msg_id"] == cmid)
    assert delivered["user_id"] == "bob"
    await laptop.wait_for(lambda f: f.get("type") == "message")  # the laptop learns the message itself
    await asyncio.sleep(0.3)
    assert [f for f in laptop.frames if f.get("type") == "ack"] == []
# -- 6. recall and delete as sync returns them ------------------------------------------------

async def test_6_recall_removes_the_body_is_idempotent_and_delete_for_me_stays_out(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    hello = next(f for f in alice.frames if f["type"] == "hello")
    assert hello["recall_window_s"] == 120
    secret_id, kept_id, deleted_id = await send_stored(alice, 3)
    await bob.wait_count(lambda f: f.get("type") == "message", 3)
    for ref in ("rc1", "rc2"):  # recalling twice: one event, no error
        await alice.send_frame({"type": "recall", "msg_id": secret_id, "id": ref})
    await bob.send_frame({"type": "delete", "msg_id": deleted_id})
    await bob.wait_for(lambda f: f.get("type") == "event" and f["sync_type"] == "delete")
    await asyncio.sleep(0.3)
    assert sorted(f["sync_type"] for f in bob.frames if f.get("type") == "event") == ["delete", "recall"]
    assert not alice.errors()
    fresh = await flare.client("bob", "new-laptop", auto_ack=False)
    page = (await fresh.sync())["conversations"][AB]
    by_id = {m["msg_id"]: m for m in page["messages"]}
    assert set(by_id) == {secret_id, kept_id}  # deleted for bob: not in his syncs
    assert by_id[secret_id]["body"] is None and by_id[secret_id]["flags"] & 1
    assert by_id[kept_id]["body"] == "m1" and by_id[kept_id]["flags"] == 0
    alices = (await (await flare.client("alice", "laptop", auto_ack=False)).sync())["conversations"][AB]
    assert [m["msg_id"] for m in alices["messages"]] == [secret_id, kept_id, deleted_id]  # only bob deleted it
