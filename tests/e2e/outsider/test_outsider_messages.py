"""Outsider scenarios, one message's life: resends deduplicated, read receipts and delivered,
recall and delete-for-me."""

from __future__ import annotations

import asyncio

from .client import c2c
from .helpers import u


# --- item 3: resends ----------------------------------------------------------------------

async def test_resend_same_client_msg_id_same_msg_id_duplicate(outsider):
    alice, bob = u("alice"), u("bob")
    a = await outsider.client(alice)
    b = await outsider.client(bob)
    first = await a.send("once", to=bob, client_msg_id="c-1")
    assert first["received"]["duplicate"] is False and first["stored"]["duplicate"] is False
    msg_id = first["received"]["msg_id"]
    assert first["stored"]["msg_id"] == msg_id and isinstance(msg_id, str) and msg_id.isdigit()

    again = await a.send("once", to=bob, client_msg_id="c-1")
    for level in ("received", "stored"):
        assert again[level]["msg_id"] == msg_id and again[level]["duplicate"] is True, again[level]
    # after a reconnect too
    await a.close()
    a2 = await outsider.client(alice, "phone")
    third = await a2.send("once", to=bob, client_msg_id="c-1")
    assert third["received"]["msg_id"] == msg_id and third["received"]["duplicate"] is True
    assert third["stored"]["msg_id"] == msg_id and third["stored"]["duplicate"] is True

    await asyncio.sleep(0.5)
    await b.sync_all()
    conv = c2c(alice, bob)
    assert [m["msg_id"] for (c, _), m in sorted(b.held.items()) if c == conv] == [msg_id]


# --- items 4-5: read receipts, delivered -----------------------------------------------------

async def test_read_receipts_and_delivered_go_where_documented(outsider):
    alice, bob, carol = u("alice"), u("bob"), u("carol")
    gid = u("g")
    conv = f"group:{gid}"
    a_phone = await outsider.client(alice, "phone")
    a_laptop = await outsider.client(alice, "laptop")
    c = await outsider.client(carol)
    b_phone = await outsider.client(bob, "phone", auto_ack=False)
    b_tablet = await outsider.client(bob, "tablet", auto_ack=False)
    assert (await a_phone.request({"type": "group_create", "group_id": gid, "members": [bob, carol]}))["type"] == "group_created"
    sent = await a_phone.send("read me", conversation_id=conv)
    m = await b_phone.expect(lambda f: f["type"] == "message" and f["msg_id"] == sent["stored"]["msg_id"])
    await b_phone.send_frame({"type": "ack", "conversation_id": conv, "seq": m["seq"]})

    # delivered: to the sending device only (§6), once per recipient user
    d = await a_phone.expect(lambda f: f["type"] == "ack" and f["level"] == "delivered" and f.get("user_id") == bob)
    assert d["msg_id"] == sent["stored"]["msg_id"] and d["seq"] == m["seq"]
    await a_laptop.expect_none(lambda f: f["type"] == "ack" and f["level"] == "delivered", 1.0)

    await b_phone.send_frame({"type": "read", "conversation_id": conv, "seq": m["seq"]})
    r = await a_phone.expect(lambda f: f["type"] == "ack" and f["level"] == "read")
    assert r["user_id"] == bob and r["seq"] == m["seq"] and r["conversation_id"] == conv
    # the read event goes to every device of every other member, not to the reader's own devices
    for other in (a_phone, a_laptop, c):
        ev = await other.expect(lambda f: f["type"] == "event" and f["sync_type"] == "read")
        assert ev["actor_id"] == bob and ev["seq"] == m["seq"]
    await b_tablet.expect_none(lambda f: f["type"] == "event" and f["sync_type"] == "read", 1.0)
    # a member who sent nothing gets no read ack; the laptop (not the sender) neither
    await c.expect_none(lambda f: f["type"] == "ack" and f["level"] == "read", 0.5)
    await a_laptop.expect_none(lambda f: f["type"] == "ack" and f["level"] == "read", 0.5)
    # a read position never moves backwards: re-reading does nothing
    await b_phone.send_frame({"type": "read", "conversation_id": conv, "seq": 1})
    await a_phone.expect_none(lambda f: f.get("sync_type") == "read" or f.get("level") == "read", 1.0)


# --- item 6: recall, delete ----------------------------------------------------------------

async def test_recall_removes_body_and_delete_for_me_stays_out(outsider):
    alice, bob = u("alice"), u("bob")
    conv = c2c(alice, bob)
    a = await outsider.client(alice)
    b = await outsider.client(bob)
    assert isinstance(a.hello["recall_window_s"], int | float) and a.hello["recall_window_s"] > 0
    sent = [await a.send(f"m{i}", to=bob) for i in range(3)]
    ids = [s["stored"]["msg_id"] for s in sent]
    for _ in range(100):
        if len(b.seqs(conv)) == 3:
            break
        await asyncio.sleep(0.05)

    # bob may not recall alice's message
    r = await b.request({"type": "recall", "msg_id": ids[0]})
    assert r["type"] == "error" and r["code"] == "forbidden"
    await a.send_frame({"type": "recall", "id": "r1", "msg_id": ids[0]})
    for dev in (a, b):
        ev = await dev.expect(lambda f: f["type"] == "event" and f["sync_type"] == "recall")
        assert ev["msg_id"] == ids[0]
    await a.send_frame({"type": "recall", "id": "r2", "msg_id": ids[0]})  # idempotent: no error, no event
    await b.expect_none(lambda f: f["type"] == "event" and f["sync_type"] == "recall", 1.0)
    await a.expect_none(lambda f: f.get("ref") == "r2", 0.1)

    await b.send_frame({"type": "delete", "id": "d1", "msg_id": ids[1]})
    ev = await b.expect(lambda f: f["type"] == "event" and f["sync_type"] == "delete")
    assert ev["for_user"] == bob and ev["msg_id"] == ids[1]
    await a.expect_none(lambda f: f["type"] == "event" and f["sync_type"] == "delete", 1.0)

    # a new device of bob reads the history: recalled without body, deleted left out
    b2 = await outsider.client(bob, "tablet")
    res = await b2.sync(cursors={conv: {"seq": 0, "event_id": 0}})
    msgs = {m["msg_id"]: m for m in res["conversations"][conv]["messages"]}
    assert ids[1] not in msgs, "a message deleted for me came back in sync"
    assert msgs[ids[0]]["body"] is None and msgs[ids[0]]["flags"] & 1
    assert msgs[ids[2]]["body"] == "m2" and not msgs[ids[2]]["flags"] & 1
    # later syncs too, from the stored cursor
    await b2.sync_all()
    assert ids[1] not in {m["msg_id"] for m in b2.held.values()}
    # alice still sees the message bob deleted for himself
    mine = (await a.sync(cursors={conv: {"seq": 0, "event_id": 0}}))["conversations"][conv]["messages"]
    assert {m["msg_id"] for m in mine} == set(ids)
