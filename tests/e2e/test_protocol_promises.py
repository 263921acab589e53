"""Issue 9: every promise docs/protocol.md makes holds for a client that follows it.

One regression test (or a few) per numbered item of the issue, each over real WebSocket
clients against both shapes. The item number is in the test name.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

from websockets.asyncio.client import connect

from services.common import codec
from services.common.auth import issue_token
from services.common.model import c2c_conversation_id
from services.delivery.keys import dedup_key

from .wsclient import WsClient

AB = c2c_conversation_id("alice", "bob")


async def _send_stored(sender: WsClient, n: int, *, to: str = "bob", prefix: str = "m") -> list[str]:
    """Send n messages until each is `stored`; the msg_ids, in send order. A send answered
    `busy` (a loaded machine: docs/protocol.md §12) is resent after its retry_after with the
    same client_msg_id, as a client must; any other error fails the test."""
    bodies = {}
    for i in range(n):
        bodies[await sender.send(f"{prefix}{i}", to=to)] = f"{prefix}{i}"
    stored: dict[str, str] = {}
    seen = 0
    async with asyncio.timeout(90):  # 101 sends on a busy split deployment took 11 s
        while len(stored) < n:
            await sender.wait_for(lambda _: len(sender.frames) > seen, timeout=90)
            new, seen = sender.frames[seen:], len(sender.frames)
            for frame in new:
                cmid = frame.get("client_msg_id") or frame.get("ref")
                if cmid not in bodies or cmid in stored:
                    continue
                if frame.get("type") == "ack" and frame.get("level") == "stored":
                    stored[cmid] = frame["msg_id"]
                elif frame.get("type") == "error" and frame.get("code") == "busy":
                    await asyncio.sleep(frame["details"]["retry_after"])
                    await sender.send(bodies[cmid], to=to, client_msg_id=cmid)
                elif frame.get("type") == "error":
                    raise AssertionError(f"send {cmid} failed: {frame}")
    return [stored[cmid] for cmid in bodies]


async def _persisted(flare, conversation_id: str, count: int) -> None:
    deadline = time.monotonic() + 60  # the store's writes lag the log on a busy machine
    while time.monotonic() < deadline:
        if await flare.count_messages(conversation_id) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{conversation_id} never reached {count} messages")


def _seqs(page: dict) -> list[int]:
    return [m["seq"] for m in page["messages"]]


# -- 1. the server-side cursor advances only over what the device holds ------------------------

async def test_1_a_live_ack_after_a_page_does_not_skip_the_rest_of_the_history(flare):
    alice = await flare.client("alice", auto_ack=False)
    await _send_stored(alice, 101)
    await _persisted(flare, AB, 101)
    bob = await flare.client("bob", auto_ack=False)
    first = (await bob.sync(limit=20))["conversations"][AB]
    assert _seqs(first) == list(range(1, 21)) and first["has_more"]
    assert first["after"]["seq"] == 0 and first["next"]["seq"] == 20
    await bob.ack_page(AB, first)
    await alice.send("live one", to="bob")
    # (a batch persisted just before bob connected may still be pushed to him live: §6)
    live = await bob.wait_for(lambda f: f.get("type") == "message" and f["body"] == "live one")
    assert live["seq"] == 102
    await bob.ack(AB, live["seq"])  # as the document says: ack each message
    got = _seqs(first)
    while True:  # page on as documented: ack each page, sync again while has_more
        page = (await bob.sync(limit=20))["conversations"].get(AB)
        if page is None:
            break
        assert page["after"]["seq"] == got[-1], "a page must start where the device's prefix ends"
        got += _seqs(page)
        await bob.ack_page(AB, page)
        if not page["has_more"]:
            break
    assert got == list(range(1, 103))


async def test_1_messages_pushed_live_before_the_first_sync_do_not_hide_the_backlog(flare):
    alice = await flare.client("alice", auto_ack=False)
    await _send_stored(alice, 48)
    await _persisted(flare, AB, 48)
    bob = await flare.client("bob", "tablet")  # acks every live message
    await _send_stored(alice, 2, prefix="live")
    await bob.wait_count(lambda f: f.get("type") == "message", 2)
    await asyncio.sleep(0.3)  # the acks are in
    again = await flare.client("bob", "tablet", auto_ack=False)  # reconnect, then sync
    got = await again.sync_all(limit=20)
    assert [m["seq"] for m in got[AB]] == list(range(1, 51))


async def test_1_explicit_cursors_read_without_moving_the_stored_cursor(flare):
    alice = await flare.client("alice", auto_ack=False)
    await _send_stored(alice, 30)
    await _persisted(flare, AB, 30)
    bob = await flare.client("bob", auto_ack=False)
    page = (await bob.sync(cursors={AB: {"seq": 20}}))["conversations"][AB]
    assert _seqs(page) == list(range(21, 31)) and page["after"] == {"seq": 20, "event_id": 0}
    await bob.ack_page(AB, page)  # holds 21..30, but 1..20 were never proven
    stored = (await bob.sync(limit=5))["conversations"][AB]
    assert _seqs(stored) == [1, 2, 3, 4, 5]


async def test_1_an_events_only_page_is_acknowledged_by_its_event_id(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob", auto_ack=False)
    msg_ids = await _send_stored(alice, 2)
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


# -- 3. a resend always gets the original msg_id --------------------------------------------

async def test_3_a_resend_after_the_cache_lost_the_key_gets_the_original_msg_id(flare):
    alice = await flare.client("alice")
    await flare.client("bob")
    await alice.send("once", to="bob", client_msg_id="resend-me")
    first = await alice.wait_for(lambda f: f.get("level") == "stored")
    await _persisted(flare, AB, 1)
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


# -- 6. recall and delete as sync returns them ------------------------------------------------

async def test_6_recall_removes_the_body_is_idempotent_and_delete_for_me_stays_out(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    hello = next(f for f in alice.frames if f["type"] == "hello")
    assert hello["recall_window_s"] == 120
    secret_id, kept_id, deleted_id = await _send_stored(alice, 3)
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


# -- 7. stored before the seq: live and sync may overlap, only by identical copies ------------

async def test_7_after_a_reconnect_every_stored_message_comes_live_or_in_sync_with_one_id_per_seq(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob", auto_ack=False)
    burst = asyncio.create_task(_send_stored(alice, 60))
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


# -- 8. over-deep bodies are refused, the connection stays --------------------------------------

async def test_8_a_900_level_body_gets_bad_frame_and_the_connection_survives(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    hello = next(f for f in alice.frames if f["type"] == "hello")
    deep = '{"a":' * 900 + "1" + "}" * 900
    assert len(deep) < hello["max_body_bytes"]
    await alice.send_raw('{"type":"send","id":"deep","client_msg_id":"deep","to":"bob","body":' + deep + "}")
    error = await alice.wait_for(lambda f: f.get("type") == "error")
    assert (error["code"], error["ref"]) == ("bad_frame", "deep")
    assert str(hello["max_depth"]) in error["message"]
    at_limit = {"k": 1}
    for _ in range(hello["max_depth"] - 2):  # frame (1) + body levels = max_depth
        at_limit = {"k": at_limit}
    await alice.send(at_limit, to="bob")
    assert (await bob.wait_for(lambda f: f.get("type") == "message"))["body"] == at_limit
    assert alice.close_code is None


# -- 9. bad input gets a named error, with ref -------------------------------------------------

async def test_9_each_bad_frame_gets_a_named_error_with_its_ref(flare):
    alice = await flare.client("alice")
    await flare.client("bob")
    cases = [
        ('{"id":"m0"}', "bad_frame", "m0"),
        ('{"type":7,"id":"m00"}', "bad_frame", "m00"),
        ('{"type":"ack","id":"a1","conversation_id":"c2c:alice:bob"}', "bad_frame", "a1"),
        ('{"type":"sync","id":"s1","cursors":{"c2c:alice:bob":5}}', "bad_frame", "s1"),
        ('{"type":"heartbeat","id":"' + "i" * 129 + '"}', "invalid_input", None),
        ('{"type":"send","id":"b1","client_msg_id":"b1","to":"bob","conversation_id":"c2c:alice:bob","body":"x"}',
         "bad_frame", "b1"),
        ('{"type":"teleport","id":"t1"}', "unknown_type", "t1"),
        ('{"type":"send","client_msg_id":"cm-7","body":"x"}', "bad_frame", "cm-7"),
    ]
    for raw, code, ref in cases:
        before = len(alice.errors())
        await alice.send_raw(raw)
        error = await alice.wait_for(lambda f, n=before: f.get("type") == "error" and len(alice.errors()) > n)
        assert (error["code"], error.get("ref")) == (code, ref), (raw[:70], error)
    assert alice.close_code is None


async def test_9_a_non_member_send_is_refused_before_received(flare):
    alice = await flare.client("alice")
    await alice.send_frame({"type": "send", "id": "nm", "client_msg_id": "nm", "conversation_id": "c2c:bob:carol",
                            "body": "let me in"})
    error = await alice.wait_for(lambda f: f.get("type") == "error")
    assert (error["code"], error["ref"]) == ("invalid_input", "nm")
    assert alice.acks("nm") == []


async def test_9_an_empty_or_missing_device_id_is_refused(flare):
    token = issue_token(flare.secret, "alice")
    for query in (f"?token={token}&device_id=", f"?token={token}"):
        async with connect(flare.gateway_urls[0] + query) as ws:
            frame = codec.loads(await ws.recv())
            await ws.wait_closed()
        assert (frame["type"], frame["code"], ws.close_code) == ("error", "invalid_input", 4002)
        assert "device_id" in frame["message"]


# -- 10. hello advertises every limit ----------------------------------------------------------

async def test_10_hello_advertises_every_limit_a_client_must_respect(flare):
    alice = await flare.client("alice")
    hello = alice.frames[0]
    assert hello["type"] == "hello" and hello["protocol"] == 2
    assert {k: hello[k] for k in ("max_frame_bytes", "max_body_bytes", "max_depth", "max_id_length",
                                  "max_group_members", "recall_window_s", "sync_page_limit",
                                  "heartbeat_interval_s", "heartbeat_timeout_s")} == {
        "max_frame_bytes": 65536, "max_body_bytes": 16384, "max_depth": 32, "max_id_length": 128,
        "max_group_members": 5000, "recall_window_s": 120, "sync_page_limit": 200,
        "heartbeat_interval_s": 30.0, "heartbeat_timeout_s": 90.0}
    # the advertised body limit is the enforced one
    await alice.send("x" * hello["max_body_bytes"], to="bob")
    await alice.wait_for(lambda f: f.get("level") == "stored")
    await alice.send("x" * (hello["max_body_bytes"] + 1), to="bob", client_msg_id="big")
    assert (await alice.wait_for(lambda f: f.get("type") == "error"))["code"] == "too_large"


# -- 11. tokens as the document specifies them ------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token_by_the_document(secret: bytes, payload: dict) -> str:
    """Written from docs/protocol.md "Tokens", not with Flare's issue_token."""
    body = _b64(json.dumps(payload).encode())
    return body + "." + _b64(hmac.new(secret.strip(), body.encode(), hashlib.sha256).digest())


async def _connect_with(flare, token: str) -> tuple[dict, int | None]:
    async with connect(f"{flare.gateway_urls[0]}?token={token}&device_id=d") as ws:
        frame = codec.loads(await ws.recv())
        if frame["type"] == "hello":
            return frame, None
        await ws.wait_closed()
        return frame, ws.close_code


async def test_11_a_token_made_from_the_document_works_and_exp_must_be_a_number(flare):
    now = int(time.time())
    secret = flare.secret + b"\n"  # as read from token.secret: surrounding whitespace is not part of the key
    claims = {"sub": "alice", "aud": "client", "jti": "doc-1", "iat": now + 0.25, "exp": now + 60}
    hello, _ = await _connect_with(flare, _token_by_the_document(secret, claims))
    assert hello["user_id"] == "alice"
    for bad in ({"exp": str(now + 60)}, {"sub": 42}, {"exp": True}, {"iat": "now"}, {"sub": "a:b"}, {"aud": "controlplane"}):
        frame, close_code = await _connect_with(flare, _token_by_the_document(secret, {**claims, **bad}))
        assert (frame["code"], close_code) == ("unauthorized", 4001), bad


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


# -- 2. groups: owner and roles, invite-only by default, history rule, ids never taken over ----

async def _group(client: WsClient, group_id: str, **fields) -> dict:
    ref = f"create-{group_id}"
    await client.send_frame({"type": "group_create", "id": ref, "group_id": group_id, **fields})
    return await client.wait_for(lambda f: f.get("ref") == ref)


async def _answer(client: WsClient, frame: dict) -> dict:
    await client.send_frame(frame)
    return await client.wait_for(lambda f: f.get("ref") == frame["id"])


async def test_2_a_stranger_cannot_join_an_invite_only_group_nor_read_it(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    mallory = await flare.client("mallory", auto_ack=False)
    created = await _group(alice, "private", members=["bob"])
    assert (created["type"], created["owner"], created["join_policy"], created["history"]) == (
        "group_created", "alice", "invite", "joined")
    await alice.send("secret plans", conversation_id="group:private")
    await bob.wait_for(lambda f: f.get("type") == "message")
    refused = await _answer(mallory, {"type": "group_join", "id": "j1", "group_id": "private"})
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    assert "group:private" not in (await mallory.sync())["conversations"]
    taken = await _answer(mallory, {"type": "group_create", "id": "c1", "group_id": "private", "members": []})
    assert (taken["type"], taken["code"]) == ("error", "conflict")
    added = await _answer(mallory, {"type": "group_add", "id": "a1", "group_id": "private", "user_ids": ["mallory"]})
    assert (added["type"], added["code"]) == ("error", "forbidden")


async def test_2_a_group_id_is_never_taken_over_after_everyone_left(flare):
    alice = await flare.client("alice")
    mallory = await flare.client("mallory", auto_ack=False)
    await _group(alice, "old", join_policy="open", history="shared")
    await alice.send("history", conversation_id="group:old")
    await alice.wait_for(lambda f: f.get("level") == "stored")
    await _answer(alice, {"type": "group_leave", "id": "l1", "group_id": "old"})
    taken = await _answer(mallory, {"type": "group_create", "id": "c1", "group_id": "old"})
    assert (taken["type"], taken["code"]) == ("error", "conflict")
    closed = await _answer(mallory, {"type": "group_join", "id": "j1", "group_id": "old"})
    assert (closed["type"], closed["code"]) == ("error", "forbidden")
    assert "group:old" not in (await mallory.sync())["conversations"]


async def test_2_roles_decide_who_adds_removes_and_promotes(flare):
    alice, bob, carol, dave = [await flare.client(u) for u in ("alice", "bob", "carol", "dave")]
    await _group(alice, "team", members=["bob"])
    denied = await _answer(bob, {"type": "group_add", "id": "b1", "group_id": "team", "user_ids": ["carol"]})
    assert denied["code"] == "forbidden"
    promoted = await _answer(alice, {"type": "group_set_role", "id": "a1", "group_id": "team", "user_id": "bob",
                                     "role": "admin"})
    assert (promoted["type"], promoted["change"], promoted["role"]) == ("group_updated", "role", "admin")
    added = await _answer(bob, {"type": "group_add", "id": "b2", "group_id": "team", "user_ids": ["carol", "dave"]})
    assert (added["change"], added["user_ids"]) == ("added", ["carol", "dave"])
    assert (await _answer(carol, {"type": "group_remove", "id": "c1", "group_id": "team",
                                  "user_ids": ["dave"]}))["code"] == "forbidden"
    assert (await _answer(bob, {"type": "group_remove", "id": "b3", "group_id": "team",
                                "user_ids": ["alice"]}))["code"] == "forbidden"  # nobody removes the owner
    removed = await _answer(bob, {"type": "group_remove", "id": "b4", "group_id": "team", "user_ids": ["dave"]})
    assert (removed["change"], removed["user_ids"]) == ("removed", ["dave"])
    info = await _answer(carol, {"type": "group_info", "id": "c2", "group_id": "team"})
    assert {m["user_id"]: m["role"] for m in info["members"]} == {"alice": "owner", "bob": "admin", "carol": "member"}
    # everyone concerned hears of each change, dave of his removal too
    dave_events = await dave.wait_count(lambda f: f.get("type") == "event" and f["sync_type"] == "member", 2)
    assert [(e["payload"]["change"], e["payload"]["user_ids"]) for e in dave_events] == [
        ("added", ["carol", "dave"]), ("removed", ["dave"])]
    await carol.wait_for(lambda f: f.get("type") == "event" and f["payload"].get("change") == "removed")
    assert (await _answer(dave, {"type": "group_info", "id": "d1", "group_id": "team"}))["code"] == "forbidden"
    await dave.send("let me back", conversation_id="group:team", client_msg_id="d2")
    assert (await dave.wait_for(lambda f: f.get("type") == "error" and f.get("ref") == "d2"))["code"] == "invalid_input"


async def test_2_history_is_from_the_join_by_default_and_whole_when_shared(flare):
    alice = await flare.client("alice")
    await _group(alice, "joined")
    await _group(alice, "shared", history="shared")
    for conv in ("group:joined", "group:shared"):
        await alice.send(f"before in {conv}", conversation_id=conv)
    await alice.wait_count(lambda f: f.get("type") == "message", 2)
    for group_id in ("joined", "shared"):
        await _answer(alice, {"type": "group_add", "id": f"add-{group_id}", "group_id": group_id, "user_ids": ["bob"]})
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
    await _group(alice, "big", members=[f"u{i}" for i in range(cap - 1)])  # the owner makes cap
    over = await _answer(alice, {"type": "group_add", "id": "more", "group_id": "big", "user_ids": ["one-more"]})
    assert (over["type"], over["code"]) == ("error", "invalid_input")
    again = await _answer(alice, {"type": "group_create", "id": "big2", "group_id": "big2",
                                  "members": [f"u{i}" for i in range(cap)]})
    assert (again["type"], again["code"]) == ("error", "invalid_input")


# -- 4. read receipts: the event to the other members, a `read` ack to the sender only ---------

async def test_4_read_receipts_go_to_others_and_the_sender_and_never_move_back(flare):
    alice = await flare.client("alice")
    alice_tablet = await flare.client("alice", "tablet")
    bob = await flare.client("bob")
    carol = await flare.client("carol")  # sent nothing
    await _group(alice, "trio", members=["bob", "carol"])
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
