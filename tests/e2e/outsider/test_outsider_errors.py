"""Outsider scenarios, refusals: every bad frame and bad connect gets its named error, and the
limits hello advertises are the ones enforced (and the client keeps to them)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from .client import Client, LimitExceeded, Refused, c2c, depth, mint_token
from .helpers import send_many, u


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
