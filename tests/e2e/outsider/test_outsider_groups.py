"""Outsider scenarios, groups: who may join and read, ids never taken over, roles, the member
cap, joined history and the owner's handover."""

from __future__ import annotations

from .helpers import u, wait_seqs


# --- item 2: groups ------------------------------------------------------------------------

async def test_stranger_cannot_join_or_read_invite_only_group(outsider):
    alice, bob, mallory = u("alice"), u("bob"), u("mal")
    gid = u("g")
    a = await outsider.client(alice)
    created = await a.request({"type": "group_create", "group_id": gid, "members": [bob]})
    assert created["type"] == "group_created"
    assert created["join_policy"] == "invite" and created["history"] == "joined" and created["owner"] == alice
    await a.send("secret plans", conversation_id=f"group:{gid}")

    m = await outsider.client(mallory)
    join = await m.request({"type": "group_join", "group_id": gid})
    assert join["type"] == "error" and join["code"] == "forbidden"
    assert f"group:{gid}" not in (await m.sync())["conversations"]
    read = await m.request({"type": "read", "conversation_id": f"group:{gid}", "seq": 1})
    assert read["type"] == "error" and read["code"] == "forbidden"
    await m.send_frame({"type": "send", "client_msg_id": "m-1", "conversation_id": f"group:{gid}", "body": "hi"})
    err = await m.expect(lambda f: f.get("ref") == "m-1")
    assert err["type"] == "error" and err["code"] == "invalid_input", "a non-member got an ack before the error"
    cursor = await m.sync(cursors={f"group:{gid}": {"seq": 0, "event_id": 0}})
    assert f"group:{gid}" not in cursor["conversations"], "explicit cursors read a group the user is not in"

    # an open group is an explicit setting: then a stranger may join
    gid2 = u("open")
    assert (await a.request({"type": "group_create", "group_id": gid2, "join_policy": "open"}))["type"] == "group_created"
    assert (await m.request({"type": "group_join", "group_id": gid2}))["type"] == "group_joined"


async def test_group_id_is_never_taken_over(outsider):
    alice, mallory = u("alice"), u("mal")
    gid = u("g")
    a = await outsider.client(alice)
    assert (await a.request({"type": "group_create", "group_id": gid, "history": "shared"}))["type"] == "group_created"
    await a.send("history", conversation_id=f"group:{gid}")
    assert (await a.request({"type": "group_leave", "group_id": gid}))["type"] == "group_left"

    m = await outsider.client(mallory)
    again = await m.request({"type": "group_create", "group_id": gid})
    assert again["type"] == "error" and again["code"] == "conflict"
    join = await m.request({"type": "group_join", "group_id": gid})
    assert join["type"] == "error" and join["code"] in ("not_found", "forbidden")
    assert f"group:{gid}" not in (await m.sync())["conversations"]


async def test_group_roles_add_remove(outsider):
    owner, bob, carol, dave = u("own"), u("bob"), u("carol"), u("dave")
    gid = u("g")
    conv = f"group:{gid}"
    o = await outsider.client(owner)
    b = await outsider.client(bob)
    d = await outsider.client(dave)
    assert (await o.request({"type": "group_create", "group_id": gid, "members": [bob, carol]}))["type"] == "group_created"

    # a member may not add
    r = await b.request({"type": "group_add", "group_id": gid, "user_ids": [dave]})
    assert r["type"] == "error" and r["code"] == "forbidden"
    # the owner promotes bob; an admin may add, a second add changes nothing
    r = await o.request({"type": "group_set_role", "group_id": gid, "user_id": bob, "role": "admin"})
    assert r["type"] == "group_updated"
    r = await b.request({"type": "group_add", "group_id": gid, "user_ids": [dave]})
    assert r["type"] == "group_updated" and r["change"] == "added" and r["user_ids"] == [dave]
    r = await b.request({"type": "group_add", "group_id": gid, "user_ids": [dave]})
    assert r["type"] == "group_updated" and r["user_ids"] == []
    # dave, added, is told by a member event
    ev = await d.expect(lambda f: f["type"] == "event" and f["sync_type"] == "member"
                        and f["payload"].get("change") == "added" and dave in f["payload"].get("user_ids", []))
    assert ev["conversation_id"] == conv
    # an admin may not set roles, nor remove an admin or the owner
    r = await b.request({"type": "group_set_role", "group_id": gid, "user_id": carol, "role": "admin"})
    assert r["type"] == "error" and r["code"] == "forbidden"
    r = await o.request({"type": "group_set_role", "group_id": gid, "user_id": carol, "role": "admin"})
    assert r["type"] == "group_updated"
    r = await b.request({"type": "group_remove", "group_id": gid, "user_ids": [carol]})
    assert r["type"] == "error" and r["code"] == "forbidden"
    r = await b.request({"type": "group_remove", "group_id": gid, "user_ids": [owner]})
    assert r["type"] == "error" and r["code"] == "forbidden"
    r = await o.request({"type": "group_set_role", "group_id": gid, "user_id": u("nobody"), "role": "admin"})
    assert r["type"] == "error" and r["code"] == "not_found"
    # an admin removes a member; the removed user is told and can no longer sync the group
    r = await b.request({"type": "group_remove", "group_id": gid, "user_ids": [dave]})
    assert r["type"] == "group_updated" and r["change"] == "removed" and r["user_ids"] == [dave]
    await d.expect(lambda f: f["type"] == "event" and f["sync_type"] == "member"
                   and f["payload"].get("change") == "removed")
    await o.send("after dave left", conversation_id=conv)
    assert conv not in (await d.sync(cursors={conv: {"seq": 0, "event_id": 0}}))["conversations"]
    info = await o.request({"type": "group_info", "group_id": gid})
    roles = {m["user_id"]: m["role"] for m in info["members"]}
    assert roles == {owner: "owner", bob: "admin", carol: "admin"}


async def test_group_member_cap_is_per_group(outsider):
    o = await outsider.client(u("own"))
    cap = o.hello["max_group_members"]
    gid = u("g")
    first = [f"u{i}" for i in range(cap - 1)]  # + the owner = cap
    half = len(first) // 2
    created = await o.request({"type": "group_create", "group_id": gid, "members": first[:half]}, timeout=60)
    assert created["type"] == "group_created", created
    r = await o.request({"type": "group_add", "group_id": gid, "user_ids": first[half:]}, timeout=60)
    assert r["type"] == "group_updated"
    r = await o.request({"type": "group_add", "group_id": gid, "user_ids": ["one-too-many"]})
    assert r["type"] == "error" and r["code"] == "invalid_input"


# --- more of §7-§9 as documented --------------------------------------------------------------

async def test_history_joined_by_default_and_owner_handover(outsider):
    owner, bob, carol = u("own"), u("bob"), u("carol")
    gid = u("g")
    conv = f"group:{gid}"
    o = await outsider.client(owner)
    b = await outsider.client(bob)
    c = await outsider.client(carol)
    await o.request({"type": "group_create", "group_id": gid, "members": [bob]})
    before = await o.send("before carol", conversation_id=conv)
    await wait_seqs(o, conv, 1)
    assert (await o.request({"type": "group_add", "group_id": gid, "user_ids": [carol]}))["user_ids"] == [carol]
    await o.send("after carol", conversation_id=conv)
    await wait_seqs(c, conv, 1)
    # history `joined` (the default): carol sees only what came after her join, even from seq 0
    res = await c.sync(cursors={conv: {"seq": 0, "event_id": 0}})
    assert [m["body"] for m in res["conversations"][conv]["messages"]] == ["after carol"]
    r = await c.request({"type": "delete", "msg_id": before["stored"]["msg_id"]})
    assert r["type"] == "error" and r["code"] == "not_found"
    # the owner leaves: the longest-standing admin, else member, becomes owner (bob, by a role event)
    assert (await o.request({"type": "group_leave", "group_id": gid}))["type"] == "group_left"
    ev = await b.expect(lambda f: f["type"] == "event" and f["sync_type"] == "member"
                        and f["payload"].get("change") == "role")
    assert ev["payload"]["role"] == "owner" and ev["payload"]["user_ids"] == [bob]
    info = await b.request({"type": "group_info", "group_id": gid})
    assert info["owner"] == bob
    assert {m["user_id"]: m["role"] for m in info["members"]} == {bob: "owner", carol: "member"}
