"""What the protocol-promise tests share: sending until stored, waiting until persisted, a
page's seqs, and group frames answered by ref.

Issue 9 asked that every promise docs/protocol.md makes hold for a client that follows it:
test_protocol_{sync,messages,groups,refusals}.py hold one regression test (or a few) per
numbered item, each over real WebSocket clients against both shapes, the item number in
the test name."""

from __future__ import annotations

import asyncio

from services.common.model import c2c_conversation_id

from .wsclient import WsClient

__all__ = ["AB", "send_stored", "wait_persisted", "page_seqs", "create_group", "answer"]

AB = c2c_conversation_id("alice", "bob")


async def send_stored(sender: WsClient, n: int, *, to: str = "bob", prefix: str = "m") -> list[str]:
    cmids = [await sender.send(f"{prefix}{i}", to=to) for i in range(n)]
    stored = await sender.wait_count(lambda f: f.get("level") == "stored" and f["client_msg_id"] in cmids, n)
    return [a["msg_id"] for a in stored]


async def wait_persisted(flare, conversation_id: str, count: int) -> None:
    for _ in range(300):
        if await flare.count_messages(conversation_id) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{conversation_id} never reached {count} messages")


def page_seqs(page: dict) -> list[int]:
    return [m["seq"] for m in page["messages"]]


async def create_group(client: WsClient, group_id: str, **fields) -> dict:
    ref = f"create-{group_id}"
    await client.send_frame({"type": "group_create", "id": ref, "group_id": group_id, **fields})
    return await client.wait_for(lambda f: f.get("ref") == ref)


async def answer(client: WsClient, frame: dict) -> dict:
    await client.send_frame(frame)
    return await client.wait_for(lambda f: f.get("ref") == frame["id"])
