"""Issue 9, items 8-11: what docs/protocol.md says is refused is refused, and the limits are
the ones announced: over-deep bodies, named errors with their ref, hello's limits, tokens
made as the document specifies them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from websockets.asyncio.client import connect

from services.common import codec
from services.common.auth import issue_token



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
