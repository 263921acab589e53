"""Every in-memory structure holding message bodies stays under its byte cap (issue 10 item 1).

A real `flarectl up` with small caps takes 1,600 messages of 2 KiB (3.2 MB, ten times the
caps): its /metrics must show each structure at or under its cap, having evicted, and
nothing a client was told STORED may be missing — eviction only drops copies.
"""

from __future__ import annotations

import asyncio

from services.common.model import c2c_conversation_id

from .flare_process import FlareProcess
from .wsclient import WsClient

TAIL_CAP = 256 * 1024
CACHE_CAP = 1024 * 1024
BODY = "x" * 2048
PER_SENDER = 400


def _sample(metrics: dict[str, float], name: str, structure: str) -> float:
    return metrics.get(f'{name}{{structure="{structure}"}}', -1.0)


async def test_byte_caps_hold_under_2kib_traffic(tmp_path):
    env = {"FLARE_MEMORY__LOG_TAIL_BYTES": str(TAIL_CAP), "FLARE_MEMORY__CACHE_BYTES": str(CACHE_CAP)}
    with FlareProcess(tmp_path / "flare", env=env) as flare:
        senders = [await WsClient(flare.url, flare.secret, f"s{i}").connect() for i in range(4)]
        receivers = [await WsClient(flare.url, flare.secret, f"r{i}").connect() for i in range(2)]
        try:
            async def pump(client: WsClient, peer: str) -> None:
                for n in range(PER_SENDER):
                    await client.send(BODY, to=peer)
                    if n % 50 == 49:  # stay a steady stream, not one burst
                        await client.wait_count(lambda f: f.get("level") == "stored", n + 1, timeout=60)

            await asyncio.gather(*(pump(c, f"r{i % 2}") for i, c in enumerate(senders)))
            for c in senders:
                stored = await c.wait_count(lambda f: f.get("level") == "stored", PER_SENDER, timeout=60)
                assert len(stored) == PER_SENDER
            for r in receivers:
                try:
                    await r.wait_count(lambda f: f.get("type") == "message", 2 * PER_SENDER, timeout=60)
                except TimeoutError:
                    raise AssertionError(f"{r.user} got {len(r.messages())} messages, {r.close_code}, {r.errors()[:2]}")

            metrics = flare.metrics()
            for structure, cap in (("log_tail", TAIL_CAP), ("cache", CACHE_CAP)):
                used = _sample(metrics, "flare_memory_bytes", structure)
                assert 0 < used <= cap, f"{structure}: {used} bytes held, cap {cap}"
                assert _sample(metrics, "flare_memory_limit_bytes", structure) == cap
                assert _sample(metrics, "flare_memory_evictions_total", structure) > 0, structure
            assert _sample(metrics, "flare_memory_bytes", "gateway_outbound") >= 0

            # What was evicted were copies: a fresh device syncs every message from L1.
            fresh = await WsClient(flare.url, flare.secret, "r0", "tablet", auto_ack=False).connect()
            got = await fresh.sync_all()
            await fresh.close()
            for i in (0, 2):
                conversation = c2c_conversation_id(f"s{i}", "r0")
                assert len(got.get(conversation, [])) == PER_SENDER, conversation
        finally:
            for c in senders + receivers:
                await c.close()
