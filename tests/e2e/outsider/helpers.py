"""What the outsider scenarios share: fresh user names, pipelined sends, waiting for seqs."""

from __future__ import annotations

import asyncio
import uuid

from .client import Client

__all__ = ["u", "send_many", "wait_seqs"]


def u(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


async def send_many(c: Client, n: int, **where) -> list[dict]:
    """Pipeline n sends and wait for every `stored` (§6)."""
    cmids = [uuid.uuid4().hex for _ in range(n)]
    for i, cmid in enumerate(cmids):
        await c.send(f"m{i}", client_msg_id=cmid, wait=None, **where)
    return [await c.acks_for(cmid) for cmid in cmids]


async def wait_seqs(c: Client, conv: str, n: int) -> None:
    for _ in range(200):  # §6: stored precedes the seq; live pushes follow shortly
        if len(c.seqs(conv)) >= n:
            return
        await asyncio.sleep(0.05)
