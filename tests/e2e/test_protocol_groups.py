"""Issue 9, item 2: every promise docs/protocol.md makes about groups holds for a client
that follows it: owner and roles, invite-only by default, the history rule, ids never
taken over."""

from __future__ import annotations

from .protocol_helpers import answer, create_group


# -- 2. groups: owner and roles, invite-only by default, history rule, ids never taken over ----

async def test_2_a_stranger_cannot_join_an_invite_only_group_nor_read_it(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    mallory = await flare.client("mallory", auto_ack=False)
    created = await create_group(alice, "private", members=["bob"])
    assert (created["type"], created["owner"], created["join_policy"], created["history"]) == (
        "group_created", "alice", "invite", "joined")
    await alice.send("secret plans", conversation_id="group:private")
    await bob.wait_for(lambda f: f.get("type") == "message")
    refused = await answer(mallory, {"type": "group_join", "id": "j1", "group_id": "private"})
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    assert "group:private" not in (await mallory.sync())["conversations"]
    taken = await answer(mallory, {"type": "group_create", "id": "c1", "group_id": "private", "members": []})
    assert (taken["type"], taken["code"]) == ("error", "conflict")
    added = await answer(mallory, {"type": "group_add", "id": "a1", "group_id": "private", "user_ids": ["mallory"]})
    assert (added["type"], added["code"]) == ("error", "forbidden")


async def test_2_a_group_id_is_never_taken_over_after_everyone_left(flare):
    alice = await flare.client("alice")
    mallory = await flare.client("mallory", auto_ack=False)
    await create_group(alice, "old", join_policy="open", history="shared")
    await alice.send("history", conversation_id="group:old")
    await alice.wait_for(lambda f: f.get("level") == "stored")
    await answer(alice, {"type": "group_leave", "id": "l1", "group_id": "old"})
    taken = await answer(mallory, {"type": "group_create", "id": "c1", "group_id": "old"})
    assert (taken["type"], taken["code"]) == ("error", "conflict")
    closed = await answer(mallory, {"type": "group_join", "id": "j1", "group_id": "old"})
    assert (closed["type"], closed["code"]) == ("error", "forbidden")
    assert "group:old" not in (await mallory.sync())["conversations"]


async def test_2_roles_decide_who_adds_removes_and_promotes(flare):
    alice, bob, carol, dave = [await flare.client(u) for u in ("alice", "bob", "carol", "dave")]
    await create_group(alice, "team", members=["bob"])
    denied = await answer(bob, {"type": "group_add", "id": "b1", "group_id": "team", "user_ids": ["carol"]})
    assert denied["code"] == "forbidden"
    promoted = await answer(alice, {"type": "group_set_role", "id": "a1", "group_id": "team", "user_id": "bob",
                                     "role": "admin"})
    assert (promoted["type"], promoted["change"], promoted["role"]) == ("group_updated", "role", "admin")
    added = await answer(bob, {"type": "group_add", "id": "b2", "group_id": "team", "user_ids": ["carol", "dave"]})
    assert (added["change"], added["user_ids"]) == ("added", ["carol", "dave"])
    assert (await answer(carol, {"type": "group_remove", "id": "c1", "group_id": "team",
                                  "user_ids": ["dave"]}))["code"] == "forbidden"
    assert (await answer(bob, {"type": "group_remove", "id": "b3", "group_id": "team",
                                "user_ids": ["alice"]}))["code"] == "forbidden"  # nobody removes the owner
    removed = await answer(bob, {"type": "group_remove", "id": "b4", "group_id": "team", "user_ids": ["dave"]})
    assert (removed["change"], removed["user_ids"]) == ("removed", ["dave"])
    info = await answer(carol, {"type": "group_info", "id": "c2", "group_id": "team"})
    assert {m["user_id"]: m["role"] for m in info["members"]} == {"alice": "owner", "bob": "admin", "carol": "member"}
    # everyone concerned hears of each change, dave of his removal too
    dave_events = await dave.wait_count(lambda f: f.get("type") == "event" and f["sync_type"] == "member", 2)
    assert [(e["payload"]["change"], e["payload"]["user_ids"]) for e in dave_events] == [
        ("added", ["carol", "dave"]), ("removed", ["dave"])]
    await carol.wait_for(lambda f: f.get("type") == "event" and f["payload"].get("change") == "removed")
    assert (await answer(dave, {"type": "group_info", "id": "d1", "group_id": "team"}))["code"] == "forbidden"
    await dave.send("let me back", conversation_id="group:team", client_msg_id="d2")
    assert (await dave.wait_for(lambda f: f.get("type") == "error" and f.get("ref") == "d2"))["code"] == "invalid_input"


async def test_2_history_is_from_the_join_by_default_and_whole_when_shared(flare):
    alice = await flare.client("alice")
    await create_group(alice, "joined")
    await create_group(alice, "shared", history="shared")
    for conv in ("group:joined", "group:shared"):
        await alice.send(f"before in {conv}", conversation_id=conv)
    await alice.wait_count(lambda f: f.get("type") == "message", 2)
    for group_id in ("joined", "shared"):
        await answer(alice, {"type": "group_add", "id": f"add-{group_id}", "group_id": group_id, "user_ids": ["bob"]})
    for conv in ("group:joined", "group:shared"):
        await alice.send(f"after in {conv}", conversation_id=conv)
    await alice.wait_count(lambda f: f.get("type") == "message", 4)
    bob = await flare.client("bob", auto_ack=False)
    got = await bob.sync_all()
    assert [m["body"] for m in got["group:joined"]] == ["after in group:joined"]
    assert [m["body"] for m in got["group:shared"]] == ["before in group:shared", "after in group:shared"]
    early = got["group:shared"][0]["msg_id"]
    hidden = next(f["msg_id"] for f in alice.frames if f.get("type") == "message" and f["body"] == "before in group:joined")
    await bob.send_frame({"type": "delete", "id": "del", "msg_id": hidden})  # not even by id
    assert (await bob.wait_for(lambda f: f.get("ref") == "del"))["code"] == "not_found"
    await bob.send_frame({"type": "delete", "id": "del2", "msg_id": early})
    await bob.wait_for(lambda f: f.get("type") == "event" and f["sync_type"] == "delete")


async def test_2_the_member_cap_is_per_group_not_per_frame(flare):
    alice = await flare.client("alice")
    hello = alice.frames[0]
    cap = hello["max_group_members"]
    await create_group(alice, "big", members=[f"u{i}" for i in range(cap - 1)])  # the owner makes cap
    over = await answer(alice, {"type": "group_add", "id": "more", "group_id": "big", "user_ids": ["one-more"]})
    assert (over["type"], over["code"]) == ("error", "invalid_input")
    again = await answer(alice, {"type": "group_create", "id": "big2", "group_id": "big2",
                                  "members": [f"u{i}" for i in range(cap)]})
    assert (again["type"], again["code"]) == ("error", "invalid_input")
