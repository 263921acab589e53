"""Fan-out freeze: what other clients see while a big group receives messages (issue 10 item 2).

    python bench/fanout_freeze.py [--members 5000 --online 50 --messages 100 --observers 5]

Starts `flarectl up` on a temporary data dir. A sender creates a group of `members` users
(`online` of them connected, the rest offline), then sends `messages` messages to it as
fast as the acks come back. Meanwhile `observers` clients outside the group ping the
gateway every 20 ms and send each other c2c messages, timing ping round trips and send ->
stored acks. Prints one JSON object: the longest ping round trip (the freeze), ping and
c2c percentiles, how long the online members took to get every message, and how many
records the offline topic got. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.flare_process import FlareProcess  # noqa: E402
from tests.e2e.wsclient import WsClient  # noqa: E402


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


async def _offline_records(data_dir: Path, topic: str) -> int:
    from services.backends.embedded.filelog import FileLog

    log = FileLog(data_dir / "log", fsync=False)
    await log.start()
    try:
        ends, starts = await log.end_offsets(topic), await log.beginning_offsets(topic)
        return sum(ends[p] - starts[p] for p in ends)
    finally:
        await log.close()


async def run(*, members: int, online: int, messages: int, observers: int, budget: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="flare-fanout-") as tmp:
        data_dir = Path(tmp) / "flare"
        # The sender's fan-out budget must cover the run (0: leave the server's default).
        env = {"FLARE_ROUTER__FANOUT_BUDGET": str(budget)} if budget else {}
        flare = FlareProcess(data_dir, env=env).start()
        clients: list[WsClient] = []
        try:
            owner = await WsClient(flare.url, flare.secret, "owner", auto_ack=False).connect()
            clients.append(owner)
            names = [f"m{i:05d}" for i in range(members - 1)]
            await owner.send_frame({"type": "group_create", "group_id": "big", "members": names})
            created = await owner.wait_for(lambda f: f.get("type") == "group_created", timeout=60)
            conversation = created["conversation_id"]
            receivers = [await WsClient(flare.url, flare.secret, n).connect() for n in names[:online]]
            watchers = [await WsClient(flare.url, flare.secret, f"obs{i}", auto_ack=False).connect()
                        for i in range(observers)]
            clients += receivers + watchers
            pings: list[float] = []
            c2c: list[float] = []
            done = asyncio.Event()

            async def ping(client: WsClient) -> None:
                while not done.is_set():
                    started = time.monotonic()
                    await asyncio.wait_for(await client.ws.ping(), 60)
                    pings.append(time.monotonic() - started)
                    await asyncio.sleep(0.02)

            async def chat(client: WsClient, peer: str) -> None:
                n = 0
                while not done.is_set():
                    started = time.monotonic()
                    cmid = await client.send(f"hi {n}", to=peer)
                    await client.wait_for(lambda f, c=cmid: f.get("client_msg_id") == c and f.get("level") == "stored",
                                          timeout=60)
                    c2c.append(time.monotonic() - started)
                    n += 1
                    await asyncio.sleep(0.05)

            background = [asyncio.create_task(ping(w)) for w in watchers]
            background += [asyncio.create_task(chat(w, f"obs{(i + 1) % observers}")) for i, w in enumerate(watchers)]
            await asyncio.sleep(1.0)
            baseline = max(pings) if pings else 0.0
            pings.clear()
            c2c.clear()
            started = time.monotonic()
            refused = 0
            for n in range(messages):
                cmid = await owner.send(f"to everyone {n}", conversation_id=conversation)
                ack = await owner.wait_for(lambda f, c=cmid: f.get("client_msg_id") == c and f.get("level") == "stored"
                                           or f.get("type") == "error" and f.get("ref") == c, timeout=60)
                refused += ack.get("type") == "error"
            sent_s = time.monotonic() - started
            for r in receivers:
                await r.wait_count(lambda f: f.get("type") == "message" and f.get("conversation_id") == conversation,
                                   messages - refused, timeout=300)
            delivered_s = time.monotonic() - started
            await asyncio.sleep(1.0)
            done.set()
            await asyncio.gather(*background, return_exceptions=True)
            rss = flare.rss_bytes()
        finally:
            for c in clients:
                await c.close()
            flare.stop()
        offline = await _offline_records(data_dir, "flare.offline")
    return {
        "members": members, "online_members": online, "messages": messages, "refused": refused,
        "observers": observers,
        "freeze_max_ping_ms": _pct(pings, 1.0), "ping_p50_ms": _pct(pings, 0.5), "ping_p99_ms": _pct(pings, 0.99),
        "ping_max_before_ms": round(baseline * 1000, 1),
        "c2c_stored_p50_ms": _pct(c2c, 0.5), "c2c_stored_max_ms": _pct(c2c, 1.0),
        "send_all_s": round(sent_s, 2), "all_delivered_to_online_s": round(delivered_s, 2),
        "offline_topic_records": offline, "server_rss_mib_after": round(rss / 2**20, 1),
        "ping_mean_ms": round(statistics.mean(pings) * 1000, 1) if pings else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--online", type=int, default=50)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--observers", type=int, default=5)
    parser.add_argument("--budget", type=int, default=-1,
                        help="sender's fan-out budget (member deliveries); default: enough for the run; 0: server default")
    args = parser.parse_args()
    budget = 2 * args.members * args.messages if args.budget < 0 else args.budget
    print(json.dumps(asyncio.run(run(members=args.members, online=args.online, messages=args.messages,
                                     observers=args.observers, budget=budget)), indent=1))


if __name__ == "__main__":
    main()
