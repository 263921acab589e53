"""RouterClient in-process and over gRPC: send (mask / block / rate limit), acks, groups."""

from __future__ import annotations

import pytest

from .grpc_stack import embedded_stack
from services.common import codec
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited, Rejected
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message
from services.router.api import serve
from services.router.client import GrpcRouterClient

from .grpc_harness import CLIENT_KINDS, client_of

C2C = ConversationId("c2c:alice:bob")
_ids = iter(range(1000, 10**6))


def message(body: object, *, sender: str = "alice", conversation_id: str = C2C) -> Message:
    msg_id = next(_ids)
    return Message(msg_id=msg_id, client_msg_id=f"c-{msg_id}", conversation_id=ConversationId(conversation_id),
                   sender_id=UserId(sender), sender_device=DeviceId("phone"), content_type="text", body=body,
                   created_at=1_700_000_000_000)


@pytest.fixture(params=CLIENT_KINDS)
async def env(request, tmp_path):
    async with embedded_stack(tmp_path) as stack:
        async with client_of(request.param, stack.router, serve=serve,
                             grpc_client=GrpcRouterClient) as client:
            yield client, stack


async def test_send_returns_stored_result(env) -> None:
    client, stack = env
    sent = message({"text": "hello", "list": [1, None]})
    result = await client.send(sent)
    assert (result.msg_id, result.duplicate, result.body) == (sent.msg_id, False, {"text": "hello", "list": [1, None]})
    again = await client.send(sent)  # the same resend
    assert (again.msg_id, again.duplicate) == (sent.msg_id, True)


async def test_masked_send_returns_and_applies_the_masked_body(env) -> None:
    client, _ = env
    sent = message("darn it")
    result = await client.send(sent)
    assert result.body == "**** it"
    assert sent.body == "**** it"  # the router masks the caller's message, in-process and over gRPC


async def test_refusals_come_back_as_the_same_errors(env) -> None:
    client, _ = env
    with pytest.raises(Rejected) as blocked:
        await client.send(message("forbidden words"))
    assert (str(blocked.value), blocked.value.details) == ("contains a sensitive word", {"rule": "sensitive_words"})

    with pytest.raises(InvalidInput, match="carol is not one of the two users of c2c:alice:bob"):
        await client.send(message("hi", sender="carol"))

    with pytest.raises(RateLimited) as limited:
        for _ in range(10):
            await client.send(message("hi", sender="bob"))
    assert str(limited.value) == "more than 5 messages in 60s"
    assert 0 < limited.value.details["retry_after"] <= 60


async def test_on_delivered_tells_the_sender(env) -> None:
    client, stack = env
    await stack.session.login(UserId("alice"), DeviceId("phone"), device_type="mobile",
                              connection_id="gw1/alice", gateway_id="gw1")
    stored = message("hi").with_seq(1)
    await stack.router.deliver([stored])
    await client.on_delivered("bob", C2C, [1, 99])
    frames = [codec.loads(f) for c, f in stack.gateways.get("gw1").pushed if c == "gw1/alice"]
    acks = [f for f in frames if f["type"] == "ack"]
    assert [(a["level"], a["seq"], a["user_id"], a["msg_id"]) for a in acks] == [
        ("delivered", 1, "bob", str(stored.msg_id))]


async def test_groups(env) -> None:
    client, _ = env
    group = "group:team"
    info = await client.create_group("alice", group, ["bob"], join_policy="open")
    assert (info.owner, info.join_policy, info.history, info.members) == (
        "alice", "open", "joined", [("alice", "owner"), ("bob", "member")])
    with pytest.raises(Conflict, match="group:team exists or existed"):
        await client.create_group("mallory", group, ["mallory"])
    await client.join_group("carol", group)  # open
    await client.leave_group("bob", group)
    with pytest.raises(Forbidden, match="only the owner or admin may add members"):
        await client.add_members("carol", group, ["dave"])
    await client.set_role("alice", group, "carol", "admin")
    assert await client.add_members("carol", group, ["dave", "alice"]) == ["dave"]
    assert await client.remove_members("carol", group, ["dave", "nobody"]) == ["dave"]
    with pytest.raises(Forbidden, match="the owner cannot be removed"):
        await client.remove_members("carol", group, ["alice"])
    assert (await client.group_info("carol", group)).members == [("alice", "owner"), ("carol", "admin")]
    with pytest.raises(Forbidden):
        await client.group_info("dave", group)
    with pytest.raises(NotFound, match="group:nope does not exist"):
        await client.join_group("carol", "group:nope")
    await client.create_group("alice", "group:closed", [])
    with pytest.raises(Forbidden, match="invite-only"):
        await client.join_group("carol", "group:closed")
    result = await client.send(message("hi team", sender="carol", conversation_id=group))
    assert result.duplicate is False
