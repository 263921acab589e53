"""One user's big group cannot take the node down (issue 10 item 2).

A real `flarectl up` with a sender budget of 30,000 member deliveries and no refill. The
sender creates a 2,000-member group (20 members online) and sends 16 messages while
observers outside the group ping the gateway: 15 messages fit the budget (1,999 each)
and reach every online member, the 16th is refused rate_limited before it is stored; the
offline topic gets one record per message naming the 1,980 offline members (not one
record per member), has a retention, and its consumer group has a committed position.
"""

from __future__ import annotations

import asyncio
import json
import time

from services.backends.embedded.filelog import FileLog

from .flare_process import FlareProcess
from .wsclient import WsClient

MEMBERS, ONLINE, FITTING = 2000, 20, 15


async def _offline_topic(data_dir) -> tuple[list[dict], dict[int, int]]:
    log = FileLog(data_dir / "log", fsync=False)
    await log.start()
    try:
        consumer = log.consumer("test-reader", ["flare.offline"])
        await consumer.start()
        records: list[dict] = []
        for _ in range(20):
            batch = await consumer.getmany(timeout_ms=200)
            records += [json.loads(r.value) for recs in batch.values() for r in recs]
        await consumer.stop()
        return records, await log.committed_offsets("flare-notify", "flare.offline")
    finally:
        await log.close()


async def test_big_group_fans_out_in_bounded_steps(tmp_path):
    env = {"FLARE_ROUTER__FANOUT_BUDGET": "30000", "FLARE_ROUTER__FANOUT_BUDGET_PER_S": "0"}
    flare = FlareProcess(tmp_path / "flare", env=env).start()
    clients: list[WsClient] = []
    try:
        owner = await WsClient(flare.url, flare.secret, "owner", auto_ack=False).connect()
        names = [f"m{i:04d}" for i in range(MEMBERS - 1)]
        await owner.send_frame({"type": "group_create", "group_id": "big", "members": names})
        conversation = (await owner.wait_for(lambda f: f.get("type") == "group_created", timeout=30))["conversation_id"]
        online = [await WsClient(flare.url, flare.secret, n).connect() for n in names[:ONLINE]]
        observers = [await WsClient(flare.url, flare.secret, f"obs{i}").connect() for i in range(3)]
        clients += [owner, *online, *observers]
        round_trips: list[float] = []
        done = asyncio.Event()

        async def ping(client: WsClient) -> None:
            while not done.is_set():
                started = time.monotonic()
                await asyncio.wait_for(await client.ws.ping(), 30)
                round_trips.append(time.monotonic() - started)
                await asyncio.sleep(0.02)

        pingers = [asyncio.create_task(ping(o)) for o in observers]
        answers = []
        for n in range(FITTING + 1):
            cmid = await owner.send(f"to all {n}", conversation_id=conversation)
            answers.append(await owner.wait_for(
                lambda f, c=cmid: f.get("client_msg_id") == c and f.get("level") == "stored"
                or f.get("type") == "error" and f.get("ref") == c))
        for member in online:
            got = await member.wait_count(lambda f: f.get("type") == "message" and f["conversation_id"] == conversation,
                                          FITTING, timeout=60)
            assert sorted(f["seq"] for f in got) == list(range(1, FITTING + 1))
        done.set()
        await asyncio.gather(*pingers)

        assert all(a.get("level") == "stored" for a in answers[:FITTING]), answers[:FITTING]
        assert answers[FITTING]["type"] == "error" and answers[FITTING]["code"] == "rate_limited", answers[FITTING]
        assert max(round_trips) < 1.0, f"observers froze for {max(round_trips):.2f}s"
        meta = json.loads((flare.data_dir / "log" / "topics" / "flare.offline" / "meta.json").read_text())
        assert meta["retention_ms"] == 24 * 3600 * 1000 and meta["retention_bytes"] > 0
    finally:
        for c in clients:
            await c.close()
        flare.stop()

    records, committed = await _offline_topic(flare.data_dir)
    assert len(records) == FITTING  # one per message, not one per offline member
    assert sorted(r["seq"] for r in records) == list(range(1, FITTING + 1))
    online_names = set(names[:ONLINE])
    for record in records:
        assert len(record["offline_users"]) == MEMBERS - 1 - ONLINE
        assert not online_names & set(record["offline_users"]) and "owner" not in record["offline_users"]
    assert len(committed) == 4 and all(offset == 0 for offset in committed.values())
