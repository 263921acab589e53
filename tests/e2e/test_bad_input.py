"""Bad input gets a clear error frame or close code; everyone else keeps being served."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect

from services.common import codec
from services.common.auth import issue_token
from services.delivery import Push

from .wsclient import WsClient


async def _refused(url: str) -> tuple[dict, int]:
    async with connect(url) as ws:
        frame = codec.loads(await ws.recv())
        await ws.wait_closed()
        return frame, ws.close_code


@pytest.mark.parametrize("token, code", [
    (None, "unauthorized"),
    ("garbage", "unauthorized"),
    ("eyJzdWIiOiJhbGljZSJ9.AAAA", "unauthorized"),
])
async def test_missing_or_bad_token_is_refused_with_4001(flare, token, code):
    url = flare.gateway_urls[0] + ("" if token is None else f"?token={token}")
    frame, close_code = await _refused(url)
    assert (frame["type"], frame["code"], close_code) == ("error", code, 4001)


async def test_expired_and_foreign_tokens_are_refused(flare):
    expired = issue_token(flare.secret, "alice", ttl_s=1, now=0)
    frame, close_code = await _refused(f"{flare.gateway_urls[0]}?token={expired}")
    assert (frame["code"], close_code) == ("token_expired", 4001)
    forged = issue_token(b"not-the-server-secret", "alice")
    frame, close_code = await _refused(f"{flare.gateway_urls[0]}?token={forged}")
    assert (frame["code"], close_code) == ("unauthorized", 4001)
    absurd_user = issue_token(flare.secret, "x" * 500)
    frame, close_code = await _refused(f"{flare.gateway_urls[0]}?token={absurd_user}")
    assert close_code == 4001 and "token subject" in frame["message"]


async def test_malformed_frames_get_error_frames_and_the_connection_survives(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    cases = [
        ("{not json", "bad_frame"),
        ("[1, 2, 3]", "bad_frame"),
        ('{"no_type": 1}', "bad_frame"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "send", "body": "x", "to": "bob"}', "bad_frame"),  # no client_msg_id
        ('{"type": "send", "client_msg_id": "a", "body": "x"}', "bad_frame"),  # no recipient
        ('{"type": "send", "client_msg_id": "b", "body": 42, "to": "bob"}', "bad_frame"),
        ('{"type": "send", "client_msg_id": "c", "body": "x", "conversation_id": "dm:alice:bob"}', "invalid_input"),
        ('{"type": "send", "client_msg_id": "d", "body": "x", "conversation_id": "c2c:bob:carol"}', "invalid_input"),
        ('{"type": "send", "client_msg_id": "' + "e" * 500 + '", "body": "x", "to": "bob"}', "invalid_input"),
        ('{"type": "recall", "msg_id": "99999999999999999999999"}', "invalid_input"),
        ('{"type": "recall", "msg_id": "-5"}', "invalid_input"),
        ('{"type": "recall", "msg_id": "12345"}', "not_found"),
        ('{"type": "ack", "conversation_id": "c2c:alice:bob", "seq": -1}', "invalid_input"),
        ('{"type": "ack", "conversation_id": "c2c:alice:bob", "seq": 1e300}', "bad_frame"),
        ('{"type": "send", "client_msg_id": "f", "to": "bob", "body": "' + "x" * 20000 + '"}', "too_large"),
    ]
    for raw, code in cases:
        await alice.send_raw(raw)
        error = await alice.wait_for(lambda f, n=len(alice.errors()): f.get("type") == "error"
                                     and len(alice.errors()) > n)
        assert error["code"] == code, (raw[:80], error)
        assert error["message"]
    await alice.send_raw(b"\x00\x01binary")
    assert (await alice.wait_for(lambda f: f.get("type") == "error" and "binary" in f["message"]))["code"] == "bad_frame"
    await alice.send("still works", to="bob")
    assert (await bob.wait_for(lambda f: f.get("type") == "message"))["body"] == "still works"
    assert await flare.count_messages() == 1


async def test_oversize_frame_closes_only_that_connection(flare):
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    mallory = await flare.client("mallory")
    await alice.send("before", to="bob")
    await bob.wait_for(lambda f: f.get("type") == "message")
    await mallory.send_raw('{"type":"send","client_msg_id":"big","to":"bob","body":"' + "x" * 200_000 + '"}')
    assert await mallory.wait_closed() == 1009
    await alice.send("after", to="bob")
    await bob.wait_count(lambda f: f.get("type") == "message", 2)
    assert [m["seq"] for m in bob.messages()] == [1, 2]
    assert await flare.count_messages() == 2


async def test_second_login_of_same_device_replaces_the_first(flare):
    first = await flare.client("alice", "phone", gateway=0)
    second = await flare.client("alice", "phone", gateway=1)  # split: the other gateway
    assert await first.wait_closed() == 4003
    assert any(f.get("code") == "replaced" for f in first.errors())
    bob = await flare.client("bob")
    await bob.send("to the new one", to="alice")
    assert (await second.wait_for(lambda f: f.get("type") == "message"))["body"] == "to the new one"


@pytest.mark.monolith_only  # shrinks the in-process gateway's outbound queue
async def test_slow_consumer_is_disconnected_without_stalling_others(flare, monkeypatch):
    slow = WsClient(flare.gateway_urls[0], flare.secret, "slowpoke", "phone", auto_ack=False)
    await slow.connect(recv_buffer=4096)
    flare.clients.append(slow)
    # Only slowpoke's queue is tiny; everyone else keeps the default, even on a loaded machine.
    (conn,) = [c for c in flare.monolith.gateway._connections.values() if c.user_id == "slowpoke"]
    conn.max_queue = 8
    slow.ws.transport.pause_reading()  # stop reading: the server's queue for it fills up
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    await alice.send_frame({"type": "group_create", "group_id": "g", "members": ["bob", "slowpoke"]})
    await alice.wait_for(lambda f: f["type"] == "group_created")
    for i in range(300):
        await alice.send("x" * 10_000, conversation_id="group:g")
    await bob.wait_count(lambda f: f.get("type") == "message", 300, timeout=60)
    slow.ws.transport.resume_reading()
    assert await slow.wait_closed(timeout=30) == 4008
    again = await flare.client("slowpoke", "phone", auto_ack=False)
    synced = await again.sync_all()
    assert [m["seq"] for m in synced["group:g"]] == list(range(1, 301))


@pytest.mark.monolith_only  # pushes through the in-process gateway directly
async def test_a_connection_never_gets_the_same_seq_twice(flare):
    """Deliveries are at least once (a batch re-read after a rebalance is delivered again);
    the gateway keeps that from reaching the device."""
    alice = await flare.client("alice")
    bob = await flare.client("bob")
    await alice.send("one", to="bob")
    await alice.send("two", to="bob")
    first, second = await bob.wait_count(lambda f: f.get("type") == "message", 2)
    gateway = flare.monolith.gateway
    (conn_id,) = [c for c, conn in gateway._connections.items() if conn.user_id == "bob"]
    for again in (first, second, first):  # the same seq again, and a lower one late
        push = Push(conn_id, again["conversation_id"], again["seq"], codec.dumps(again))
        assert gateway.push([push]) == []  # the connection is alive
    await alice.send("three", to="bob")
    await bob.wait_count(lambda f: f.get("type") == "message", 3)
    await asyncio.sleep(0.2)
    assert [m["seq"] for m in bob.messages()] == [1, 2, 3]
