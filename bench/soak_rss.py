"""Soak: does the monolith's RSS plateau under steady traffic? (issue 10 item 1)

    python bench/soak_rss.py [--duration 600 --rate 200 --pairs 10 --body-bytes 2048 --interval 10]

Starts `flarectl up` on a temporary data dir, then `pairs` senders each send to their own
online receiver (real WebSocket clients that ack what they get) at `rate` messages/s in
total, with bodies of `body-bytes`. Every `interval` seconds it samples the server's RSS
and its bounded structures (/metrics). Prints one JSON object: the RSS curve, and the
flatness of the last 5 minutes — (max - min) / min of the samples taken then, which the
issue wants within 10 %. A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from services.common.auth import issue_token  # noqa: E402
from tests.e2e.flare_process import FlareProcess  # noqa: E402

_ids = itertools.count()


class Counters:
    sent = stored = delivered = errors = 0  # delivered: message frames at senders (their echo) and receivers


async def _client(url: str, secret: bytes, user: str):
    ws = await connect(f"{url}?token={issue_token(secret, user)}&device_id=d&device_type=desktop", max_size=None)
    hello = orjson.loads(await ws.recv())
    assert hello["type"] == "hello", hello
    return ws


async def _read(ws, counters: Counters, *, ack: bool) -> None:
    try:
        async for raw in ws:
            frame = orjson.loads(raw)
            kind = frame.get("type")
            if kind == "message":
                counters.delivered += 1
                if ack:
                    await ws.send(orjson.dumps({"type": "ack", "conversation_id": frame["conversation_id"],
                                                "seq": frame["seq"]}).decode())
            elif kind == "ack" and frame.get("level") == "stored":
                counters.stored += 1
            elif kind == "error":
                counters.errors += 1
    except Exception:
        pass


async def _heartbeat(ws, stop_at: float) -> None:
    # An app-level heartbeat keeps the session (and its route) alive, as clients must
    # (docs/protocol.md); without it receivers look offline after session_timeout_s.
    while time.monotonic() < stop_at:
        await ws.send('{"type":"heartbeat"}')
        await asyncio.sleep(20)


async def _send_steadily(ws, peer: str, rate: float, body: str, stop_at: float, counters: Counters) -> None:
    interval = 1.0 / rate
    next_at = time.monotonic()
    while next_at < stop_at:
        await ws.send(orjson.dumps({"type": "send", "client_msg_id": f"soak-{next(_ids)}", "to": peer,
                                    "body": body}).decode())
        counters.sent += 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def soak(*, duration: float, rate: float, pairs: int, body_bytes: int, interval: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="flare-soak-") as tmp:
        flare = FlareProcess(Path(tmp) / "flare").start()
        counters = Counters()
        sockets = []
        try:
            for i in range(pairs):
                sockets.append((await _client(flare.url, flare.secret, f"soak-s{i}"),
                                await _client(flare.url, flare.secret, f"soak-r{i}")))
            readers = [asyncio.create_task(_read(s, counters, ack=False)) for s, _ in sockets]
            readers += [asyncio.create_task(_read(r, counters, ack=True)) for _, r in sockets]
            started = time.monotonic()
            stop_at = started + duration
            body = "x" * body_bytes
            senders = [asyncio.create_task(_send_steadily(s, f"soak-r{i}", rate / pairs, body, stop_at, counters))
                       for i, (s, _) in enumerate(sockets)]
            beats = [asyncio.create_task(_heartbeat(ws, stop_at + 5)) for pair in sockets for ws in pair]
            samples = []
            while True:
                metrics = await asyncio.to_thread(flare.metrics)
                samples.append({
                    "t_s": round(time.monotonic() - started, 1),
                    "rss_mib": round(flare.rss_bytes() / 2**20, 1),
                    "sent": counters.sent, "stored": counters.stored, "delivered": counters.delivered,
                    "held_mib": {k.split('"')[1]: round(v / 2**20, 2) for k, v in metrics.items()
                                 if k.startswith("flare_memory_bytes{")},
                })
                if time.monotonic() >= stop_at:
                    break
                await asyncio.sleep(min(interval, max(0.0, stop_at - time.monotonic())))
            await asyncio.gather(*senders)
            await asyncio.sleep(2)
            evictions = {k.split('"')[1]: v for k, v in (await asyncio.to_thread(flare.metrics)).items()
                         if k.startswith("flare_memory_evictions_total{")}
            for task in readers + beats:
                task.cancel()
        finally:
            for s, r in sockets:
                await s.close()
                await r.close()
            flare.stop()
    last = [s["rss_mib"] for s in samples if s["t_s"] >= duration - 300] or [samples[-1]["rss_mib"]]
    return {
        "duration_s": duration, "target_rate": rate, "body_bytes": body_bytes, "pairs": pairs,
        "achieved_rate": round(counters.stored / duration, 1),
        "sent": counters.sent, "stored": counters.stored, "delivered": counters.delivered, "errors": counters.errors,
        "rss_start_mib": samples[0]["rss_mib"], "rss_end_mib": samples[-1]["rss_mib"],
        "last_5min_min_mib": min(last), "last_5min_max_mib": max(last),
        "last_5min_flatness": round((max(last) - min(last)) / min(last), 4),
        "evictions": evictions,
        "curve": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--body-bytes", type=int, default=2048)
    parser.add_argument("--interval", type=float, default=10)
    args = parser.parse_args()
    result = asyncio.run(soak(duration=args.duration, rate=args.rate, pairs=args.pairs,
                              body_bytes=args.body_bytes, interval=args.interval))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
