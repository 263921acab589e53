"""A damaged log segment never makes the server drop new messages (issue 10 item 4).

With `flarectl up` stopped, one byte is flipped in the middle of the message log's busy
segment (or garbage appended: a torn tail). After a restart, three new messages must be
acked STORED, persisted and delivered; a flipped byte must show in /healthz as degraded,
naming the lost offsets; a torn tail is cut and the node stays ok.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from services.common.model import c2c_conversation_id

from .flare_process import FlareProcess
from .wsclient import WsClient

CONVERSATION = c2c_conversation_id("alice", "bob")


def _busy_segment(data_dir: Path) -> Path:
    segments = (data_dir / "log" / "topics" / "flare.messages").glob("*/*.log")
    return max(segments, key=lambda p: p.stat().st_size)


def _persisted(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "messages.db") as db:
        return db.execute("SELECT count(*) FROM messages WHERE conversation_id = ?", (CONVERSATION,)).fetchone()[0]


async def _exchange(flare: FlareProcess, count: int, tag: str) -> None:
    alice = await WsClient(flare.url, flare.secret, "alice", f"phone-{tag}").connect()
    bob = await WsClient(flare.url, flare.secret, "bob", f"phone-{tag}").connect()
    try:
        sent = [await alice.send(f"{tag}-{i} " + "x" * 200, to="bob") for i in range(count)]
        for cmid in sent:
            await alice.wait_for(lambda f, c=cmid: f.get("client_msg_id") == c and f.get("level") == "stored")
        got = await bob.wait_count(lambda f: f.get("type") == "message" and f["body"].startswith(f"{tag}-"), count)
        assert sorted(f["body"].split()[0] for f in got) == sorted(f"{tag}-{i}" for i in range(count))
    finally:
        await alice.close()
        await bob.close()


@pytest.mark.parametrize("damage", ["flip_mid_segment", "torn_tail"])
async def test_new_messages_survive_a_damaged_segment(tmp_path, damage):
    data_dir = tmp_path / "flare"
    flare = FlareProcess(data_dir).start()
    try:
        await _exchange(flare, 20, "before")
        for _ in range(200):  # the consumer commits right after persisting
            if _persisted(data_dir) == 20:
                break
            await asyncio.sleep(0.1)
    finally:
        flare.stop()
    assert _persisted(data_dir) == 20

    segment = _busy_segment(data_dir)
    data = bytearray(segment.read_bytes())
    if damage == "flip_mid_segment":
        data[len(data) // 2] ^= 0xFF
    else:
        data += b"\x00\x00\x01\x00garbage of a write the crash cut short"
    segment.write_bytes(bytes(data))

    flare.start()
    try:
        health = flare.health()
        if damage == "flip_mid_segment":
            assert health["status"] == "degraded", health
            assert any("flare.messages" in p and "lost offsets" in p for p in health["problems"]), health
        else:
            assert health["status"] == "ok", health
        await _exchange(flare, 3, "after")
        for _ in range(200):
            if _persisted(data_dir) == 23:
                break
            await asyncio.sleep(0.1)
        assert _persisted(data_dir) == 23  # the 20 from before (already in L1) and all 3 new ones
        reader = await WsClient(flare.url, flare.secret, "bob", "fresh-device", auto_ack=False).connect()
        history = (await reader.sync_all())[CONVERSATION]
        await reader.close()
        assert [m["seq"] for m in history] == list(range(1, 24))
    except BaseException:
        print("\n".join(flare.lines[-120:]))  # the server's side of a failure, shown by pytest
        raise
    finally:
        flare.stop()
