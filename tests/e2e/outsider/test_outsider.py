"""Issue 9's scenarios, run by a client written from docs/protocol.md alone (client.py).

Only the deployment fixture (`flare`, tests/e2e/conftest.py) is Flare's: it starts the
monolith (what `flarectl up` runs) or the split shape and gives the gateway URLs. The token
key is read from the `token.secret` file in the deployment's data directory, as §2 says.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest

from .client import Client, LimitExceeded, Refused, c2c, depth, key_from_secret_file, mint_token


@pytest.fixture
def app(flare, tmp_path: Path):
    """A new app's view of a deployment: gateway URLs, the token key from token.secret, clients."""
    secrets = sorted(tmp_path.rglob("token.secret"))
    assert secrets, f"no token.secret under {tmp_path}"
    return App(flare.gateway_urls, key_from_secret_file(secrets[0]))


class App:
    def __init__(self, urls: list[str], key: bytes) -> None:
        self.urls, self.key = urls, key
        self.clients: list[Client] = []
        self._gateway: dict[str, int] = {}

    def url(self, user: str) -> str:  # spread users over the gateways, so deliveries cross them
        return self.urls[self._gateway.setdefault(user, len(self._gateway)) % len(self.urls)]

    async def client(self, user: str, device: str = "phone", **kwargs) -> Client:
        c = Client(self.url(user), self.key, user, device, **kwargs)
        self.clients.append(c)
        await c.connect()
        return c

    async def close(self) -> None:
        for c in self.clients:
            await c.close()


@pytest.fixture
async def outsider(app):
    yield app
    await app.close()


def u(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


async def send_many(c: Client, n: int, **where) -> list[dict]:
    """Pipeline n sends and wait for every `stored` (§6)."""
    cmids = [uuid.uuid4().hex for _ in range(n)]
    for i, cmid in enumerate(cmids):
        await c.send(f"m{i}", client_msg_id=cmid, wait=None, **where)
    return [await c.acks_for(cmid) for cmid in cmids]


def is_error(code: str, ref=None):
    return lambda f: f["type"] == "error" and f["code"] == code and f.get("ref") == ref


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


# --- items 8-9: named errors ------------------------------------------------------------------

async def test_each_bad_frame_gets_its_named_error_with_ref(outsider):
    alice, bob = u("alice"), u("bob")
    conv = c2c(alice, bob)
    a = await outsider.client(alice)
    cases = [
        ({"type": "ack", "id": "e1", "conversation_id": conv}, "bad_frame", "e1"),
        ({"type": "sync", "id": "e2", "cursors": {conv: 5}}, "bad_frame", "e2"),
        ({"id": "m0"}, "bad_frame", "m0"),
        ({"type": 7, "id": "m00"}, "bad_frame", "m00"),
        ({"type": "nonsense", "id": "e3"}, "unknown_type", "e3"),
        ({"type": "send", "id": "e4", "client_msg_id": "x", "to": bob, "conversation_id": conv, "body": "b"},
         "bad_frame", "e4"),
        ({"type": "send", "id": "e4b", "client_msg_id": "x", "body": "b"}, "bad_frame", "e4b"),
        ({"type": "send", "id": "e5", "client_msg_id": "y", "conversation_id": "nope", "body": "b"},
         "invalid_input", "e5"),
        ({"type": "send", "id": "e6", "client_msg_id": "z", "to": bob,
          "body": "x" * (a.hello["max_body_bytes"] + 1)}, "too_large", "e6"),
        ({"type": "recall", "id": "e7", "msg_id": "123456789"}, "not_found", "e7"),
        ({"type": "read", "id": "e8", "conversation_id": conv}, "bad_frame", "e8"),
        ({"type": "send", "id": "e9", "client_msg_id": "c" * 129, "to": bob, "body": "b"}, "invalid_input", "e9"),
        # §10: right type, absurd value is invalid_input; a wrong type is bad_frame
        ({"type": "send", "id": "e10", "client_msg_id": "", "to": bob, "body": "b"}, "invalid_input", "e10"),
        ({"type": "send", "id": "e11", "client_msg_id": 5, "to": bob, "body": "b"}, "bad_frame", "e11"),
        ({"type": "presence", "id": "e12", "user_ids": [bob] * 1001}, "invalid_input", "e12"),
        ({"type": "presence", "id": "e13", "user_ids": []}, "invalid_input", "e13"),
        ({"type": "presence", "id": "e14", "user_ids": [1]}, "bad_frame", "e14"),
        ({"type": "ack", "id": "e15", "conversation_id": conv, "seq": "5"}, "bad_frame", "e15"),
        ({"type": "ack", "id": "e16", "conversation_id": conv, "seq": 0}, "invalid_input", "e16"),
        ({"type": "sync", "id": "e17", "limit": 0}, "invalid_input", "e17"),
        ({"type": "group_join", "id": "e18", "group_id": ""}, "invalid_input", "e18"),
    ]
    for frame, code, ref in cases:
        await a.send_raw(frame)
        err = await a.expect(lambda f: f["type"] in ("error", "ack") and f.get("ref") == ref)
        assert (err["type"], err.get("code")) == ("error", code), (frame, err)
        assert err.get("message"), err

    # a frame id over max_id_length: an error without ref (§3)
    for bad_id, code in (("i" * 129, "invalid_input"), ("", "invalid_input"), (5, "bad_frame")):
        await a.send_raw({"type": "heartbeat", "id": bad_id})
        err = await a.expect(lambda f: f["type"] == "error")
        assert err["code"] == code and err.get("ref") is None, (bad_id, err)
    for raw in ("not json", "[1, 2]", b"\x00binary"):
        await a.send_raw(raw)
        err = await a.expect(lambda f: f["type"] == "error")
        assert err["code"] == "bad_frame" and err.get("ref") is None, (raw, err)
    # nothing closed the connection
    assert (await a.request({"type": "heartbeat"}))["type"] == "heartbeat_ack"


async def test_connect_errors_are_named(outsider):
    url, key = outsider.urls[0], outsider.key
    now = time.time()
    cases = [
        ({"device_id": ""}, None, "invalid_input", 4002),
        ({"device_type": "toaster"}, None, "invalid_input", 4002),
        ({}, mint_token(key, "alice", exp=str(int(now + 60))), "unauthorized", 4001),
        ({}, mint_token(key, 42), "unauthorized", 4001),
        ({}, mint_token(key, "alice", exp=int(now - 10)), "token_expired", 4001),
        ({}, mint_token(b"wrong key", "alice"), "unauthorized", 4001),
        ({}, mint_token(key, "alice", aud="controlplane"), "unauthorized", 4001),
    ]
    for query, token, code, close in cases:
        c = Client(url, key, "alice", "phone")
        with pytest.raises(Refused) as refused:
            await c.connect(token, **query)
        assert refused.value.error["code"] == code and refused.value.close_code == close, (query, token)
    # the key derivation of §2 is the right one: a token minted from token.secret logs in
    ok = Client(url, key, "alice", "phone")
    outsider.clients.append(ok)
    assert (await ok.connect())["user_id"] == "alice"


async def test_900_level_body_gets_bad_frame_and_connection_survives(outsider):
    alice, bob = u("alice"), u("bob")
    a = await outsider.client(alice)
    body: object = "x"
    for _ in range(900):
        body = [body]
    text = json.dumps({"type": "send", "client_msg_id": "deep", "to": bob, "body": body})
    assert len(text) < 5000
    await a.send_raw(text)
    err = await a.expect(lambda f: f.get("ref") == "deep")
    assert err["type"] == "error" and err["code"] == "bad_frame"
    # the limit is exactly as advertised: the frame is level 1, so a body may nest max_depth - 1
    limit = a.hello["max_depth"]

    def nested(levels: int) -> object:
        v: object = {}
        for _ in range(levels - 1):
            v = {"k": v}
        return v

    ok = await a.send(nested(limit - 1), to=bob)
    assert ok["stored"]["msg_id"]
    await a.send_raw({"type": "send", "client_msg_id": "deep2", "to": bob, "body": nested(limit)})
    err = await a.expect(lambda f: f.get("ref") == "deep2")
    assert err["type"] == "error" and err["code"] == "bad_frame"
    assert (await a.request({"type": "heartbeat"}))["type"] == "heartbeat_ack"


# --- item 10: hello limits, and the client respects them -----------------------------------

async def test_hello_advertises_limits_and_client_respects_them(outsider):
    alice, bob = u("alice"), u("bob")
    a = await outsider.client(alice)
    h = a.hello
    assert h["protocol"] == 2 and h["user_id"] == alice and h["device_id"] == "phone"
    for name in ("max_frame_bytes", "max_body_bytes", "max_depth", "max_id_length", "max_group_members",
                 "recall_window_s", "sync_page_limit", "server_time"):
        assert isinstance(h[name], int) and h[name] > 0, name
    for name in ("heartbeat_interval_s", "heartbeat_timeout_s"):
        assert isinstance(h[name], int | float) and h[name] > 0, name
    assert abs(h["heartbeat_interval_s"] * 3 - h["heartbeat_timeout_s"]) < 1e-6
    assert h["max_body_bytes"] <= h["max_frame_bytes"]

    # the client refuses locally what the server would refuse
    with pytest.raises(LimitExceeded):
        await a.send("x" * (h["max_body_bytes"] + 1), to=bob)
    with pytest.raises(LimitExceeded):
        await a.send_frame({"type": "send", "client_msg_id": "big", "to": bob, "body": {"k": "x" * h["max_frame_bytes"]}})
    body: object = 1
    for _ in range(h["max_depth"]):
        body = [body]
    assert depth({"type": "send", "body": body}) > h["max_depth"]
    with pytest.raises(LimitExceeded):
        await a.send(body, to=bob)
    # a body at exactly max_body_bytes passes
    assert (await a.send("y" * h["max_body_bytes"], to=bob))["stored"]["duplicate"] is False
    # a sync limit up to 5000 is accepted (and lowered to sync_page_limit), above it is refused
    await send_many(a, 3, to=bob)
    for _ in range(200):  # §6: stored precedes the seq; wait for the own-device pushes
        if len(a.seqs(c2c(alice, bob))) == 4:
            break
        await asyncio.sleep(0.05)
    res = await a.sync(limit=5000, cursors={c2c(alice, bob): {"seq": 0}})
    assert [m["seq"] for m in res["conversations"][c2c(alice, bob)]["messages"]] == [1, 2, 3, 4]
    r = await a.request({"type": "sync", "limit": 5001})
    assert r["type"] == "error" and r["code"] == "invalid_input", r

    # what happens beyond max_frame_bytes: close 1009
    await a.send_raw(json.dumps({"type": "heartbeat", "pad": "p" * h["max_frame_bytes"]}))
    assert await asyncio.wait_for(a.closed, 10) == 1009


# --- more of §7-§9 as documented --------------------------------------------------------------

async def wait_seqs(c: Client, conv: str, n: int) -> None:
    for _ in range(200):  # §6: stored precedes the seq; live pushes follow shortly
        if len(c.seqs(conv)) >= n:
            return
        await asyncio.sleep(0.05)


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
