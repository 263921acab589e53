"""Idle WebSocket clients for the connection-scale benchmark: connect, say nothing, stay.

    python bench/idle_clients.py --gateway ws://127.0.0.1:8700/ws --secret-file DIR/token.secret --count 5000 --offset 0

Each client is its own user (`idle<N>`), heartbeats every 30 s (the server closes a
connection that sends nothing for 90 s) and otherwise only reads. Prints `ready <n>` once
`count` connections are open (n = how many), then holds them until stdin closes.
bench/e2e_bench.py --idle runs a few of these next to the load test.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.common.auth import issue_token  # noqa: E402


async def _hold(gateway: str, secret: bytes, count: int, offset: int, concurrency: int) -> None:
    from websockets.asyncio.client import connect

    gate = asyncio.Semaphore(concurrency)
    conns = []
    failed = 0

    async def one(i: int) -> None:
        nonlocal failed
        user = f"idle{offset + i}"
        url = f"{gateway}?token={issue_token(secret, user, ttl_s=7200)}&device_id=d0&compact=1"
        async with gate:
            try:
                ws = await connect(url, compression=None, ping_interval=None, open_timeout=30, max_queue=16)
                await ws.recv()  # hello
                conns.append(ws)
            except Exception:  # noqa: BLE001 - counted, reported
                failed += 1

    await asyncio.gather(*(one(i) for i in range(count)))
    print(f"ready {len(conns)} failed {failed}", flush=True)

    async def heartbeat_forever() -> None:
        while True:
            await asyncio.sleep(30)
            for ws in list(conns):
                try:
                    await ws.send('{"type":"heartbeat"}')
                except Exception:  # noqa: BLE001
                    conns.remove(ws)

    async def drain(ws) -> None:
        try:
            async for _ in ws:
                pass
        except Exception:  # noqa: BLE001
            pass

    tasks = [asyncio.create_task(drain(ws)) for ws in conns] + [asyncio.create_task(heartbeat_forever())]
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    for task in tasks:
        task.cancel()
    for ws in conns:
        ws.transport.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--secret-file", type=Path, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    secret = args.secret_file.read_bytes().strip()
    try:
        import uvloop
        uvloop.run(_hold(args.gateway, secret, args.count, args.offset, args.concurrency))
    except ImportError:  # pragma: no cover
        asyncio.run(_hold(args.gateway, secret, args.count, args.offset, args.concurrency))


if __name__ == "__main__":
    main()
