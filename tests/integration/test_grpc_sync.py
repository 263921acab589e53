"""SyncClient in-process and over gRPC: sync pages, cursor acks, recall / delete / read."""

from __future__ import annotations

import asyncio

import pytest

from .grpc_stack import embedded_stack
from services.common.errors import Forbidden, NotFound
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import ConversationEvent, Cursor, Message, SyncType, now_ms
from services.sync.api import serve
from services.sync.client import GrpcSyncClient

from .grpc_harness import CLIENT_KINDS, client_of, settle

C2C = ConversationId("c2c:alice:bob")


def stored(seq: int, body: object) -> Message:
    return Message(msg_id=5000 + seq, client_msg_id=f"c-{seq}", conversation_id=C2C, sender_id=UserId("alice"),
                   sender_device=DeviceId("phone"), content_type="text", body=body, created_at=now_ms(), seq=seq)


MESSAGES = [stored(1, "one"), stored(2, {"text": "two", "mentions": ["bob"]}), stored(3, ["three", 3])]


@pytest.fixture(params=CLIENT_KINDS)
async def env(request, tmp_path):
    async with embedded_stack(tmp_path) as stack:
        await stack.db.add_members(C2C, ["alice", "bob"])
        for message in MESSAGES:  # sent "now", so the recall window holds however late this test runs
            message.created_at = now_ms()
        await stack.db.insert_messages(MESSAGES)
        async with client_of(request.param, stack.sync, serve=serve,
                             grpc_client=GrpcSyncClient) as client:
            yield client, stack


async def test_sync_returns_what_the_device_missed(env) -> None:
    client, _ = env
    result = await client.sync("bob", "phone")
    assert result == {C2C: {"messages": [m.to_wire() for m in MESSAGES], "events": [], "has_more": False,
                            "max_seq": 3, "after": {"seq": 0, "event_id": 0}, "next": {"seq": 3, "event_id": 0}}}
    page = await client.sync("bob", "phone", cursors={C2C: Cursor(seq=1)}, limit=1)
    assert page[C2C]["messages"] == [MESSAGES[1].to_wire()]
    assert page[C2C]["has_more"] is True
    assert (page[C2C]["after"], page[C2C]["next"]) == ({"seq": 1, "event_id": 0}, {"seq": 2, "event_id": 0})
    assert await client.sync("bob", "phone", cursors={C2C: Cursor(seq=3)}) == {}


async def test_note_ack_advances_the_server_side_cursor(env) -> None:
    client, stack = env
    client.note_ack("bob", "phone", C2C, seq=1)
    client.note_ack("bob", "phone", C2C, seq=2)
    client.note_ack("bob", "phone", C2C, seq=1)  # a late, older ack never moves the cursor back
    await settle(client)
    assert (await stack.sync.cursors("bob", "phone"))[C2C].seq == 2
    client.note_ack("bob", "laptop", C2C, seq=3)  # the laptop never proved 1 and 2: no jump over the gap
    await settle(client)
    await stack.sync.flush()  # written: the range (2, 3] does not reach the cursor (0) and is dropped
    assert (await stack.sync.cursors("bob", "laptop")).get(C2C, Cursor()).seq == 0
    client.note_ack("bob", "laptop", C2C, seq=2, after_seq=0)  # a page (0, 2]
    await settle(client)
    await stack.sync.flush()
    assert (await stack.sync.cursors("bob", "laptop"))[C2C].seq == 2
    result = await client.sync("bob", "phone")
    assert [m["seq"] for m in result[C2C]["messages"]] == [3]


async def _to_the_service(client) -> None:
    """What the gRPC client buffers reaches the service's buffer (in-process it is there)."""
    if isinstance(client, GrpcSyncClient):
        await client.flush()


async def test_an_ack_whose_write_is_under_way_counts_for_the_next_sync(env) -> None:
    # The flush takes the buffered ranges off the buffer, then writes them: a sync that reads
    # the cursors in between must still see them (docs/protocol.md §7: an ack sent before a
    # sync always counts for that sync).
    client, stack = env
    writing, release = asyncio.Event(), asyncio.Event()
    advance = stack.db.advance_cursors

    async def slow_write(updates):
        writing.set()
        await release.wait()
        await advance(updates)

    stack.db.advance_cursors = slow_write
    client.note_ack("bob", "phone", C2C, seq=2, after_seq=0)  # a page (0, 2]
    await _to_the_service(client)
    flush = asyncio.create_task(stack.sync.flush())
    await writing.wait()
    sync = asyncio.create_task(client.sync("bob", "phone"))
    await asyncio.sleep(0.05)  # the sync is on its way while the write is under way
    release.set()
    await flush
    page = await sync
    assert (page[C2C]["after"]["seq"], [m["seq"] for m in page[C2C]["messages"]]) == (2, [3])
    assert (await stack.sync.cursors("bob", "phone"))[C2C].seq == 2


async def test_an_ack_written_while_a_sync_reads_the_cursors_counts_for_that_sync(env) -> None:
    # The sync's read of the stored cursors began before the flush committed (so it returns
    # the old rows) and ends after it (so the range is no longer buffered either).
    client, stack = env
    reading, release = asyncio.Event(), asyncio.Event()
    read = stack.db.get_cursors

    async def stale_read(user_id, device_id):
        rows = await read(user_id, device_id)
        reading.set()
        await release.wait()
        return rows

    client.note_ack("bob", "phone", C2C, seq=2, after_seq=0)
    await _to_the_service(client)
    stack.db.get_cursors = stale_read
    sync = asyncio.create_task(client.sync("bob", "phone"))
    await reading.wait()
    flush = asyncio.create_task(stack.sync.flush())  # would commit while the read holds older rows
    await asyncio.sleep(0.05)
    release.set()
    page = await sync
    await flush
    assert (page[C2C]["after"]["seq"], [m["seq"] for m in page[C2C]["messages"]]) == (2, [3])


async def test_recall_delete_read_return_events(env) -> None:
    client, _ = env
    recall = await client.recall("alice", MESSAGES[0].msg_id)
    assert isinstance(recall, ConversationEvent)
    assert (recall.sync_type, recall.msg_id, recall.seq, recall.actor_id, recall.for_user, recall.event_id) == (
        SyncType.RECALL, MESSAGES[0].msg_id, 1, "alice", None, 1)
    delete = await client.delete("bob", MESSAGES[1].msg_id)
    assert (delete.sync_type, delete.for_user, delete.event_id) == (SyncType.DELETE, "bob", 2)
    read = await client.read("bob", C2C, 99)
    assert (read.sync_type, read.seq, read.msg_id) == (SyncType.READ, 3, 0)  # capped at max seq

    events = (await client.sync("bob", "phone"))[C2C]["events"]
    assert [(e["sync_type"], e["for_user"], e["payload"]) for e in events] == [
        ("recall", None, {}), ("delete", "bob", {}), ("read", None, {})]
    assert events[0] == recall.to_wire()


async def test_errors_keep_type_and_message(env) -> None:
    client, _ = env
    with pytest.raises(Forbidden, match="only the sender can recall a message"):
        await client.recall("bob", MESSAGES[0].msg_id)
    with pytest.raises(NotFound, match="message 42 does not exist"):
        await client.delete("bob", 42)
    with pytest.raises(NotFound, match=f"message {MESSAGES[0].msg_id} does not exist"):
        await client.delete("mallory", MESSAGES[0].msg_id)  # no hint about other conversations
    with pytest.raises(Forbidden, match="carol is not a member of c2c:alice:bob"):
        await client.read("carol", C2C, 1)


async def test_grpc_note_ack_is_batched_and_sent_in_the_background(tmp_path) -> None:
    async with embedded_stack(tmp_path) as stack:
        async with client_of("grpc", stack.sync, serve=serve,
                             grpc_client=lambda target: GrpcSyncClient(target, ack_flush_interval_s=0.02)) as client:
            calls: list[int] = []
            send = client._stub.NoteAcks

            async def counting(request, **kwargs):
                calls.append(len(request.acks))
                return await send(request, **kwargs)

            client._stub.NoteAcks = counting
            for seq in range(1, 201):
                client.note_ack("bob", "phone", C2C, seq=seq)
                client.note_ack("bob", "laptop", C2C, seq=seq, event_id=seq // 2)
            for _ in range(100):
                if calls and client._flusher is None:  # sent and answered
                    break
                await asyncio.sleep(0.01)
            assert calls == [3]  # 400 acks, merged per device and column (seq, event_id): one RPC
            cursors = await stack.sync.cursors("bob", "laptop")
            assert (cursors[C2C].seq, cursors[C2C].event_id) == (200, 100)
