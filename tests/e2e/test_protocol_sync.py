"""Issue 9, items 1 and 7: every promise docs/protocol.md makes about sync holds for a
client that follows it: the server-side cursor advances only over what the device holds,
and live pushes and sync overlap only by identical copies."""

from __future__ import annotations

import asyncio

from .protocol_helpers import AB, page_seqs, send_stored, wait_persisted


# -- 1. the server-side cursor advances only over what the device holds ------------------------

async def test_1_a_live_ack_after_a_page_does_not_skip_the_rest_of_the_history(flare):
    alice = await flare.client("alice", auto_ack=False)
    await send_stored(alice, 101)
    await wait_persisted(flare, AB, 101)
    bob = await flare.client("bob", auto_ack=False)
    first = (await bob.sync(limit=20))["conversations"][AB]
    assert page_seqs(first) == list(range(1, 21)) and first["has_more"]
    assert first["after"]["seq"] == 0 and first["next"]["seq"] == 20
    await bob.ack_page(AB, first)
    await alice.send("live one", to="bob")
    # (a batch persisted just before bob connected may still be pushed to him live: §6)
    live = await bob.wait_for(lambda f: f.get("type") == "message" and f["body"] == "live one")
    assert live["seq"] == 102
    await bob.ack(AB, live["seq"])  # as the document says: ack each message
    got = page_seqs(first)
    while True:  # page on as documented: ack each page, sync again while has_more
        page = (await bob.sync(limit=20))["conversations"].get(AB)
        if page is None:
            break
        assert page["after"]["seq"] == got[-1], "a page must start where the device's prefix ends"
        got += page_seqs(page)
        await bob.ack_page(AB, page)
        if not page["has_more"]:
            break
    # What bob holds: the pages, and the live pushes his ack of 102 proved (§7: the frames
    # before it on this connection). An old message pushed live (above) makes a run up to
    # 102 that a page's ack joins, so the last seqs may rightly not come again in a page.
    held = set(got) | {m["seq"] for m in bob.messages(AB) if m["seq"] <= live["seq"]}
    assert got == list(range(1, got[-1] + 1)) and sorted(held) == list(range(1, 103))


async def test_1_messages_pushed_live_before_the_first_sync_do_not_hide_the_backlog(flare):
    alice = await flare.client("alice", auto_ack=False)
    await send_stored(alice, 48)
    await wait_persisted(flare, AB, 48)
    bob = await flare.client("bob", "tablet")  # acks every live message
    await send_stored(alice, 2, prefix="live")
    await bob.wait_count(lambda f: f.get("type") == "message", 2)
    await asyncio.sleep(0.3)  # the acks are in
    again = await flare.client("bob", "tablet", auto_ack=False)  # reconnect, then sync
    got = await again.sync_all(limit=20)
    assert [m["seq"] for m in got[AB]] == list(range(1, 51))


async def test_1_explicit_cursors_read_without_moving_the_stored_cursor(flare):
    alice = await flare.client("alice", auto_ack=False)
    await send_stored(alice, 30)
    await wait_persisted(flare, AB, 30)
    bob = await flare.client("bob", auto_ack=False)
    page = (await bob.sync(cursors={AB: {"seq": 20}}))["conversations"][AB]
    assert page_seqs(page) == list(range(21, 31)) and page["after"] == {"seq": 20, "event_id": 0}
    await bob.ack_page(AB, page)  # holds 21..30, but 1..20 were never proven
    stored = (await bob.sync(limit=5))["conversations"][AB]
    assert page_seqs(stored) == [1, 2, 3, 4, 5]


async def test_1_an_events_only_page_is_acknowledged_by_its_event_id(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob", auto_ack=False)
    msg_ids = await send_stored(alice, 2)
    await bob.wait_count(lambda f: f.get("type") == "message", 2)
    await bob.sync_all()  # bob's device has both messages
    for msg_id in msg_ids:
        await alice.send_frame({"type": "recall", "msg_id": msg_id})
    await bob.wait_count(lambda f: f.get("type") == "event" and f["sync_type"] == "recall", 2)
    page = (await bob.sync())["conversations"][AB]
    assert page["messages"] == [] and [e["sync_type"] for e in page["events"]] == ["recall", "recall"]
    assert page["next"]["seq"] == page["after"]["seq"] == 2
    assert (await bob.sync())["conversations"][AB]["events"] == page["events"]  # not acked: offered again
    await bob.ack_page(AB, page)
    assert AB not in (await bob.sync())["conversations"]


# -- 7. stored before the seq: live and sync may overlap, only by identical copies ------------

async def test_7_after_a_reconnect_every_stored_message_comes_live_or_in_sync_with_one_id_per_seq(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob", auto_ack=False)
    burst = asyncio.create_task(send_stored(alice, 60))
    await bob.wait_count(lambda f: f.get("type") == "message", 5)
    await bob.close()  # reconnect in the middle of the burst
    again = await flare.client("bob", auto_ack=False)
    synced = await again.sync_all()
    msg_ids = await burst
    await asyncio.sleep(0.5)
    copies: dict[int, set[str]] = {}
    bodies: dict[int, str] = {}
    for m in synced.get(AB, []) + again.messages(AB) + bob.messages(AB):
        copies.setdefault(m["seq"], set()).add(m["msg_id"])
        bodies[m["seq"]] = m["body"]
    assert sorted(copies) == list(range(1, 61)), sorted(bodies.items())
    assert all(len(ids) == 1 for ids in copies.values()), "one (conversation, seq) is one message"
    assert {i for ids in copies.values() for i in ids} == set(msg_ids)
    live = [m["seq"] for m in again.messages(AB)]
    assert live == sorted(set(live)), "a connection gets each seq at most once, in order"
    # The sender, reconnected, resends one it already has: every ack of it names the msg_id
    # its `message` frame carries, so the sender matches its own sends by client_msg_id.
    resender = await flare.client("alice", "phone-2")
    cmid = next(f["client_msg_id"] for f in alice.frames if f.get("level") == "stored")
    await resender.send("again", to="bob", client_msg_id=cmid)
    acks = await resender.wait_count(lambda f: f.get("type") == "ack" and f["client_msg_id"] == cmid, 2)
    original = next(m for m in alice.messages(AB) if m["client_msg_id"] == cmid)
    assert [(a["level"], a["msg_id"], a["duplicate"]) for a in acks] == [
        ("received", original["msg_id"], True), ("stored", original["msg_id"], True)]
