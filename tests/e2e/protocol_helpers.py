"""What the protocol-promise tests share: sending until stored, waiting until persisted, a
page's seqs, and group frames answered by ref.

Issue 9 asked that every promise docs/protocol.md makes hold for a client that follows it:
test_protocol_{sync,messages,groups,refusals}.py hold one regression test (or a few) per
numbered item, each over real WebSocket clients against both shapes, the item number in
the test name."""

from __future__ import annotations

import asyncio
import time

from services.common.model import c2c_conversation_id

from .wsclient import WsClient

__all__ = ["AB", "send_stored", "send_one_stored", "wait_persisted", "page_seqs", "create_group", "answer"]

AB = c2c_conversation_id("alice", "bob")


async def send_stored(sender: WsClient, n: int, *, to: str = "bob", prefix: str = "m") -> list[str]:
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


async def send_one_stored(sender: WsClient, body: str, *, conversation_id: str) -> str:
    """Send one message and wait for its `stored`, resending after `retry_after` while the
    answer is `busy` (§12), so a burst keeps its send order in seq order; its msg_id. Any
    other error fails the test."""
    cmid = await sender.send(body, conversation_id=conversation_id)
    answered = 0  # answers to cmid already looked at

    def answers() -> list[dict]:
        return [f for f in sender.frames if (f.get("client_msg_id") or f.get("ref")) == cmid
                and (f.get("type") == "error" or (f.get("type") == "ack" and f.get("level") == "stored"))]

    async with asyncio.timeout(60):
        while True:
            await sender.wait_for(lambda _: len(answers()) > answered, timeout=60)
            frame = answers()[answered]
            answered += 1
            if frame["type"] == "ack":
                return frame["msg_id"]
            if frame.get("code") != "busy":
                raise AssertionError(f"send {cmid} failed: {frame}")
            await asyncio.sleep(frame["details"]["retry_after"])
            await sender.send(body, conversation_id=conversation_id, client_msg_id=cmid)


async def wait_persisted(flare, conversation_id: str, count: int) -> None:
    deadline = time.monotonic() + 60  # the store's writes lag the log on a busy machine
    while time.monotonic() < deadline:
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
