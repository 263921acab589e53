"""Issue 2 must-show: real WebSocket clients chatting through a running deployment."""

from __future__ import annotations

import asyncio

from services.common.model import c2c_conversation_id

from .protocol_helpers import send_one_stored


def assert_gap_free_once(messages: list[dict], expected: int) -> None:
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(1, expected + 1)), seqs
    assert len({m["msg_id"] for m in messages}) == expected


async def test_one_to_one_every_device_gets_every_message_once_in_order(flare):
    alice_phone = await flare.client("alice", "phone")
    alice_laptop = await flare.client("alice", "laptop")
    bob = await flare.client("bob", "phone")
    conv = c2c_conversation_id("alice", "bob")
    for i in range(20):
        sender = (alice_phone, bob, alice_laptop)[i % 3]
        await sender.send(f"hello {i}", conversation_id=conv)
    for device in (alice_phone, alice_laptop, bob):
        got = await device.wait_count(lambda f: f.get("type") == "message", 20)
        assert_gap_free_once(got, 20)
    await asyncio.sleep(0.3)  # nothing more arrives: no duplicates later
    for device in (alice_phone, alice_laptop, bob):
        assert len(device.messages()) == 20
    assert await flare.count_messages(conv) == 20


async def test_group_of_five_everyone_receives_everything(flare):
    users = [await flare.client(f"user{i}") for i in range(5)]
    await users[0].send_frame({"type": "group_create", "group_id": "team", "members": [f"user{i}" for i in range(5)]})
    created = await users[0].wait_for(lambda f: f["type"] == "group_created")
    assert created["members"] == [f"user{i}" for i in range(5)]
    for i in range(25):  # each until stored: a burst at online members may be shed (§12 busy)
        await send_one_stored(users[i % 5], f"msg {i}", conversation_id="group:team")
    for user in users:
        got = await user.wait_count(lambda f: f.get("type") == "message", 25)
        assert_gap_free_once(got, 25)


async def test_sender_sees_received_stored_delivered_read(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    cmid = await alice.send("are you there?", to="bob")
    delivered = await alice.wait_for(lambda f: f.get("level") == "delivered" and f.get("client_msg_id") == cmid)
    assert delivered["user_id"] == "bob"
    msg = await bob.wait_for(lambda f: f.get("type") == "message")
    await bob.send_frame({"type": "read", "conversation_id": msg["conversation_id"], "seq": msg["seq"]})
    read = await alice.wait_for(lambda f: f.get("level") == "read")
    assert read["seq"] == msg["seq"] and read["user_id"] == "bob"
    assert alice.acks(cmid) == ["received", "stored", "delivered"]
    acks = [f for f in alice.frames if f.get("type") == "ack" and f.get("client_msg_id") == cmid]
    assert len({a["msg_id"] for a in acks}) == 1 and acks[0]["msg_id"] == msg["msg_id"]


async def test_offline_recipient_syncs_all_100_in_order(flare):
    alice = await flare.client("alice")
    conv = c2c_conversation_id("alice", "bob")
    for i in range(100):  # alice's own device is online: a burst may be shed (§12 busy)
        await send_one_stored(alice, f"while you were away {i}", conversation_id=conv)
    await alice.wait_count(lambda f: f.get("type") == "message", 100)  # persisted and sequenced
    bob = await flare.client("bob", auto_ack=False)
    got = await bob.sync_all()
    assert_gap_free_once(got[conv], 100)
    assert [m["body"] for m in got[conv]] == [f"while you were away {i}" for i in range(100)]


async def test_resent_client_msg_id_is_stored_and_delivered_once(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    for _ in range(3):
        await alice.send("only once", to="bob", client_msg_id="fixed-id-1")
    stored = await alice.wait_count(lambda f: f.get("level") == "stored", 3)
    assert len({a["msg_id"] for a in stored}) == 1
    assert sum(1 for a in stored if a["duplicate"]) == 2
    await bob.wait_for(lambda f: f.get("type") == "message")
    await alice.send("after", to="bob")
    await bob.wait_count(lambda f: f.get("type") == "message", 2)
    assert [m["body"] for m in bob.messages()] == ["only once", "after"]
    assert await flare.count_messages() == 2


async def test_recall_and_delete_reach_every_device_even_offline_ones(flare):
    alice = await flare.client("alice", "phone")
    bob_phone = await flare.client("bob", "phone")
    bob_tablet = await flare.client("bob", "tablet")
    cmid = await alice.send("oops", to="bob")
    await alice.send("keep", to="bob")
    await bob_tablet.wait_count(lambda f: f.get("type") == "message", 2)
    await bob_tablet.close()  # offline while the recall happens
    msg_id = next(f["msg_id"] for f in alice.frames if f.get("level") == "stored" and f["client_msg_id"] == cmid)
    await alice.send_frame({"type": "recall", "msg_id": msg_id})
    for device in (alice, bob_phone):
        event = await device.wait_for(lambda f: f.get("type") == "event" and f["sync_type"] == "recall")
        assert event["msg_id"] == msg_id
    await bob_phone.send_frame({"type": "delete", "msg_id": msg_id})
    deleted = await bob_phone.wait_for(lambda f: f.get("type") == "event" and f["sync_type"] == "delete")
    assert deleted["for_user"] == "bob"
    bob_tablet_again = await flare.client("bob", "tablet")
    result = await bob_tablet_again.sync()
    events = result["conversations"][c2c_conversation_id("alice", "bob")]["events"]
    assert [(e["sync_type"], e["msg_id"]) for e in events] == [("recall", msg_id), ("delete", msg_id)]
    alice_laptop = await flare.client("alice", "laptop")  # alice never sees bob's delete-for-me
    alice_events = (await alice_laptop.sync())["conversations"][c2c_conversation_id("alice", "bob")]["events"]
    assert [e["sync_type"] for e in alice_events] == ["recall"]
    recalled = [m for m in (await alice_laptop.sync(cursors={c2c_conversation_id("alice", "bob"): {"seq": 0}}))
                ["conversations"][c2c_conversation_id("alice", "bob")]["messages"] if m["msg_id"] == msg_id]
    assert recalled[0]["flags"] & 1 and recalled[0]["body"] is None


async def test_sensitive_words_block_and_mask_and_rules_change_at_runtime(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    await flare.apply_filter_rules({"sensitive_words": ["badword", {"word": "傻瓜", "action": "mask"}]})
    blocked = await alice.send("this has badword inside", to="bob")
    error = await alice.wait_for(lambda f: f.get("type") == "error" and f.get("ref") == blocked)
    assert error["code"] == "rejected"
    await alice.send("你是傻瓜吗", to="bob")
    masked = await bob.wait_for(lambda f: f.get("type") == "message")
    assert masked["body"] == "你是**吗"
    newly = await alice.send("now forbidden: newword", to="bob")
    await alice.wait_for(lambda f: f.get("level") == "stored" and f["client_msg_id"] == newly)
    await flare.apply_filter_rules({"sensitive_words": ["newword"]})
    again = await alice.send("now forbidden: newword", to="bob")
    error = await alice.wait_for(lambda f: f.get("type") == "error" and f.get("ref") == again)
    assert error["code"] == "rejected"
    fine = await alice.send("badword is allowed again", to="bob")
    await alice.wait_for(lambda f: f.get("level") == "stored" and f["client_msg_id"] == fine)


async def test_frequency_limit_refuses_with_clear_error(flare):
    await flare.apply_filter_rules({"spam_rules": [{"type": "frequency", "limit": 5, "window": 60}]})
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    for i in range(7):
        await alice.send(f"spam {i}", to="bob")
    errors = await alice.wait_count(lambda f: f.get("type") == "error", 2)
    assert {e["code"] for e in errors} == {"rate_limited"}
    assert errors[0]["details"]["retry_after"] > 0
    await bob.wait_count(lambda f: f.get("type") == "message", 5)
    await asyncio.sleep(0.2)
    assert len(bob.messages()) == 5
    carol = await flare.client("carol")  # other senders are not affected
    await carol.send("hi", to="bob")
    await bob.wait_count(lambda f: f.get("type") == "message", 6)
