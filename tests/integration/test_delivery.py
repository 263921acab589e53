"""services.delivery on the embedded stack: what crosses the gateway seam says what it is.

A Push carries (connection_id, conversation_id, seq, frame): the seq and conversation are
those of the message inside the frame, so the gateway can keep "each seq once per
connection" without parsing; frames that are not messages carry seq 0.
"""

from __future__ import annotations

from .grpc_stack import embedded_stack
from services.common import codec
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message


def _message(msg_id: int, conversation_id: str, seq: int, sender: str = "alice") -> Message:
    return Message(msg_id=msg_id, client_msg_id=f"c-{msg_id}", conversation_id=ConversationId(conversation_id),
                   sender_id=UserId(sender), sender_device=DeviceId("phone"), content_type="text", body="hi",
                   created_at=1_700_000_000_000).with_seq(seq)


async def _login(stack, user: str, gateway_id: str) -> str:
    connection_id = f"{gateway_id}/{user}"
    await stack.session.login(UserId(user), DeviceId("phone"), device_type="mobile",
                              connection_id=connection_id, gateway_id=gateway_id)
    return connection_id


async def test_message_pushes_carry_the_conversation_and_seq_of_their_frame(tmp_path) -> None:
    async with embedded_stack(tmp_path) as stack:
        bob = await _login(stack, "bob", "gw1")
        carol = await _login(stack, "carol", "gw2")
        await stack.router.create_group("alice", "group:g", ["alice", "bob", "carol"])
        batch = [_message(1, "c2c:alice:bob", 7), _message(2, "group:g", 3), _message(3, "group:g", 4)]
        await stack.delivery.deliver(batch)

        # (create_group's membership event went out first, as a non-message push: seq 0)
        to_bob = [p for p in stack.gateways.get("gw1").pushes if p.seq]
        to_carol = [p for p in stack.gateways.get("gw2").pushes if p.seq]
        assert [(p.connection_id, p.conversation_id, p.seq) for p in to_bob] == [
            (bob, "c2c:alice:bob", 7), (bob, "group:g", 3), (bob, "group:g", 4)]
        assert [(p.connection_id, p.conversation_id, p.seq) for p in to_carol] == [
            (carol, "group:g", 3), (carol, "group:g", 4)]
        for push in to_bob + to_carol:
            frame = codec.loads(push.frame)
            assert (frame["type"], frame["conversation_id"], frame["seq"]) == ("message", push.conversation_id,
                                                                                push.seq)
        # One frame object per message, however many devices get it.
        assert to_bob[1].frame is to_carol[0].frame


async def test_delivered_acks_are_pushed_as_frames_that_are_not_messages(tmp_path) -> None:
    async with embedded_stack(tmp_path) as stack:
        await _login(stack, "bob", "gw1")
        alice = await _login(stack, "alice", "gw2")
        await stack.delivery.deliver([_message(5, "c2c:alice:bob", 1)])
        await stack.router.on_delivered("bob", "c2c:alice:bob", [1])
        await stack.router.on_delivered("bob", "c2c:alice:bob", [1])  # once per recipient
        to_alice = [p for p in stack.gateways.get("gw2").pushes if p.connection_id == alice]
        # Her own message (the sender's devices get it too), then the ack: seq 0, so the
        # gateway never de-duplicates it.
        assert [(p.conversation_id, p.seq) for p in to_alice] == [("c2c:alice:bob", 1), ("", 0)]
        frame = codec.loads(to_alice[1].frame)
        assert (frame["type"], frame["level"], frame["seq"], frame["msg_id"]) == ("ack", "delivered", 1, "5")
