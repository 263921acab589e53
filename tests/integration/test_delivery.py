"""services.delivery on the embedded stack: what crosses the gateway seam says what it is.

A Push carries (connection_id, conversation_id, seq, frame): the seq and conversation are
those of the message inside the frame, so the gateway can keep "each seq once per
connection" without parsing; frames that are not messages carry seq 0.
"""

from __future__ import annotations

from .grpc_stack import embedded_stack
from services.common.config import RouterConfig
from services.delivery import Delivery
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


class _CountingDB:
    """The stack's MessageDB, counting the lookups of acks for messages a router never delivered."""

    def __init__(self, db) -> None:
        self._db = db
        self.lookups = 0

    async def messages_after(self, *args, **kwargs):
        self.lookups += 1
        return await self._db.messages_after(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._db, name)


def _delivered_to(stack, connection_id: str) -> list[dict]:
    frames = [codec.loads(p.frame) for gw in ("gw1", "gw2") for p in stack.gateways.get(gw).pushes
              if p.connection_id == connection_id]
    return [f for f in frames if f.get("type") == "ack" and f.get("level") == "delivered"]


async def test_split_acks_after_every_recipient_was_told_ask_nobody(tmp_path) -> None:
    # Split deployment (a shared cache): bob's second device and alice's own devices ack a
    # message this router delivered and already reported DELIVERED for. They need nothing:
    # no MessageDB lookup, no second DELIVERED.
    async with embedded_stack(tmp_path) as stack:
        db = _CountingDB(stack.db)
        delivery = Delivery(session=stack.session, gateways=stack.gateways, db=db, log=stack.log,
                            config=RouterConfig(), shared=stack.cache)
        alice = await _login(stack, "alice", "gw2")
        await _login(stack, "bob", "gw1")
        message = _message(9, "c2c:alice:bob", 1)
        await stack.db.insert_messages([message])
        await delivery.deliver([message])
        await delivery.on_delivered("bob", "c2c:alice:bob", [1])  # bob's phone
        await delivery.on_delivered("bob", "c2c:alice:bob", [1])  # bob's laptop
        await delivery.on_delivered("alice", "c2c:alice:bob", [1])  # alice's other device
        assert len(_delivered_to(stack, alice)) == 1
        assert db.lookups == 0

        # Another router instance (no memory of the message) still answers an ack for it
        # from the MessageDB, and the shared marker keeps DELIVERED once per user.
        other = Delivery(session=stack.session, gateways=stack.gateways, db=db, log=stack.log,
                         config=RouterConfig(), shared=stack.cache)
        await other.on_delivered("bob", "c2c:alice:bob", [1])
        assert db.lookups == 1
        assert len(_delivered_to(stack, alice)) == 1
        second = _message(10, "c2c:alice:bob", 2)
        await stack.db.insert_messages([second])
        await other.on_delivered("bob", "c2c:alice:bob", [2])
        assert [f["seq"] for f in _delivered_to(stack, alice)] == [1, 2]


async def test_what_acked_messages_are_remembered_by_is_bounded(tmp_path) -> None:
    async with embedded_stack(tmp_path) as stack:
        config = RouterConfig(pending_delivered_bytes=8 << 20)  # done: 1 MiB
        delivery = Delivery(session=stack.session, gateways=stack.gateways, db=stack.db, log=stack.log,
                            config=config, shared=stack.cache)
        await _login(stack, "bob", "gw1")
        conversation = "c2c:alice:bob"
        batch = [_message(100 + i, conversation, i + 1) for i in range(20_000)]
        await delivery.deliver(batch)
        await delivery.on_delivered("bob", conversation, [m.seq for m in batch])
        assert delivery.done_budget.used <= delivery.done_budget.limit
        assert delivery.done_budget.evictions > 0


async def test_split_acks_in_a_group_too_big_for_delivered_send_none(tmp_path) -> None:
    # docs/protocol.md: `delivered` only for messages with at most delivered_max_recipients
    # recipients. A router that never remembered such a message (too big) must not answer
    # its acks from the MessageDB either.
    async with embedded_stack(tmp_path) as stack:
        db = _CountingDB(stack.db)
        delivery = Delivery(session=stack.session, gateways=stack.gateways, db=db, log=stack.log,
                            config=RouterConfig(delivered_max_recipients=1), shared=stack.cache)
        alice = await _login(stack, "alice", "gw2")
        await _login(stack, "bob", "gw1")
        await stack.router.create_group("alice", "group:big", ["alice", "bob", "carol"])
        message = _message(11, "group:big", 1)
        await stack.db.insert_messages([message])
        await delivery.deliver([message])
        await delivery.on_delivered("bob", "group:big", [1])
        assert _delivered_to(stack, alice) == []
        assert db.lookups == 0
