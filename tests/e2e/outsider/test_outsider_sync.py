"""Outsider scenarios, sync (§7-§8): cursors and paging with live acks, reconnects, events-only
pages acked by event_id, reads synced to the reader's own devices."""

from __future__ import annotations

import asyncio

from .client import c2c
from .helpers import send_many, u, wait_seqs


# --- item 1: cursors, paging, reconnect ------------------------------------------------------

async def test_paging_limit_20_with_live_acks_loses_nothing(outsider):
    alice, bob = u("alice"), u("bob")
    conv = c2c(alice, bob)
    a = await outsider.client(alice)
    await send_many(a, 101, to=bob)

    b = await outsider.client(bob)  # follows §7: acks every live message, pages with next
    live_sent = []

    async def a_live_message_arrives():
        if len(live_sent) < 3:  # live messages while paging; each is acked by the client
            acks = await a.send(f"live{len(live_sent)}", to=bob)
            live_sent.append(acks["stored"]["msg_id"])
            # wait until it is pushed (and so acked) before the next page is asked for
            for _ in range(100):
                if any(m["msg_id"] == live_sent[-1] for m in b.held.values()):
                    break
                await asyncio.sleep(0.05)

    pages = await b.sync_all(limit=20, between_pages=a_live_message_arrives)
    assert all(len(p["messages"]) <= 20 for p in pages)
    assert b.seqs(conv) == list(range(1, 105)), "a seq was skipped by paging with live acks"
    assert len({m["msg_id"] for (c, _), m in b.held.items() if c == conv}) == 104
    # and everything is now acked: the stored cursor reaches the end
    assert (await b.sync(limit=20))["conversations"] == {}


async def test_reconnect_live_acks_before_sync_then_sync_loses_nothing(outsider):
    alice, bob = u("alice"), u("bob")
    conv = c2c(alice, bob)
    a = await outsider.client(alice)
    b = await outsider.client(bob)
    await send_many(a, 5, to=bob)
    for _ in range(200):  # §6: stored precedes the seq; b is online, so they come live
        if len(b.seqs(conv)) == 5:
            break
        await asyncio.sleep(0.05)
    await b.sync_all()
    assert b.seqs(conv) == [1, 2, 3, 4, 5]
    await b.close()

    await send_many(a, 30, to=bob)  # while bob is offline: seqs 6-35
    b2 = await outsider.client(bob)  # reconnect, and before syncing 20 live messages come and are acked
    await send_many(a, 20, to=bob)
    for _ in range(200):
        if set(range(36, 56)) <= set(b2.seqs(conv)):
            break
        await asyncio.sleep(0.05)
    # §6: a message stored just before the reconnect (seq 35) may also come live
    assert set(range(36, 56)) <= set(b2.seqs(conv)) <= set(range(6, 56))
    await b2.sync_all(limit=20)
    assert b2.seqs(conv) == list(range(6, 56)), "sync after reconnect lost what the live acks jumped over"
    # dedup rule §6: one copy per (conversation_id, seq), identical msg_id whichever arrived first
    assert len({m["msg_id"] for m in b2.held.values()}) == 50


# --- more of §7-§9 as documented --------------------------------------------------------------

async def test_events_only_page_is_acked_by_event_id_and_read_syncs_to_own_devices(outsider):
    alice, bob = u("alice"), u("bob")
    conv = c2c(alice, bob)
    a = await outsider.client(alice)
    b = await outsider.client(bob)
    sent = await send_many(a, 2, to=bob)
    await wait_seqs(b, conv, 2)
    await b.sync_all()
    assert (await b.sync())["conversations"] == {}
    # a recall is an event, not a message: the next page is events-only, acked by event_id alone
    await a.send_frame({"type": "recall", "msg_id": sent[0]["stored"]["msg_id"]})
    await b.expect(lambda f: f["type"] == "event" and f["sync_type"] == "recall")
    page = (await b.sync())["conversations"][conv]
    assert page["messages"] == [] and [e["sync_type"] for e in page["events"]] == ["recall"]
    assert page["next"]["seq"] == page["after"]["seq"] and page["next"]["event_id"] > page["after"]["event_id"]
    await b.ack_page(conv, page)
    assert (await b.sync())["conversations"] == {}, "an events-only page acked by event_id came back"
    # bob reads on his phone: his tablet gets no live read event, but learns it from sync (§8)
    t = await outsider.client(bob, "tablet")
    await t.sync_all()
    await b.send_frame({"type": "read", "conversation_id": conv, "seq": 2})
    await a.expect(lambda f: f["type"] == "event" and f["sync_type"] == "read")
    await t.expect_none(lambda f: f["type"] == "event" and f["sync_type"] == "read", 0.5)
    events = (await t.sync())["conversations"][conv]["events"]
    assert [(e["sync_type"], e["actor_id"], e["seq"]) for e in events] == [("read", bob, 2)]
