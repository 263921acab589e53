"""The largest filter document applies without freezing clients (issue 10 item 3).

A real `flarectl up`; a WebSocket client pings the gateway every 20 ms throughout. The
largest filter-rules document validation accepts (100k words of 64 characters, ~6.7 MB:
over gRPC's default 4 MiB) is dry-run, then applied through the control plane's gRPC API.
Both must succeed, the new words must block a message, and no ping may take longer than
1 s (a behaviour check with a wide margin — it took ~4-23 s when validation, the diff and
the automaton build ran on the event loop).
"""

from __future__ import annotations

import asyncio
import random
import string
import time

from controlplane.client import AdminClient

from .flare_process import FlareProcess
from .wsclient import WsClient

STALL_LIMIT_S = 1.0


async def test_100k_word_document_applies_while_clients_stay_responsive(tmp_path):
    rng = random.Random(10)
    words = ["".join(rng.choices(string.ascii_lowercase, k=64)) for _ in range(100_000)]
    manifest = {"kind": "filter-rules", "spec": {"action": "block", "sensitive_words": words}}
    with FlareProcess(tmp_path / "flare") as flare:
        token = (flare.data_dir / "admin.token").read_text().strip()
        pinger = await WsClient(flare.url, flare.secret, "pinger").connect()
        sender = await WsClient(flare.url, flare.secret, "alice").connect()
        round_trips: list[float] = []
        done = asyncio.Event()

        async def ping_forever() -> None:
            while not done.is_set():
                started = time.monotonic()
                await asyncio.wait_for(await pinger.ws.ping(), 30)
                round_trips.append(time.monotonic() - started)
                await asyncio.sleep(0.02)

        pings = asyncio.create_task(ping_forever())
        try:
            async with AdminClient(f"127.0.0.1:{flare.controlplane_port}", token=token, timeout_s=120) as admin:
                preview = await admin.apply(manifest, dry_run=True)
                assert preview["dry_run"] and preview["changed"]
                assert "+100000 -0" in preview["diff"]
                result = await admin.apply(manifest)
                for _ in range(1200):
                    status = await admin.status()
                    if any(k["kind"] == "filter-rules" and k["state"] == "SYNCED" and k["applied_version"] >= result["version"]
                           for i in status["instances"] for k in i["kinds"]):
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"filter-rules v{result['version']} never SYNCED: {status}")
            await asyncio.sleep(0.5)
        finally:
            done.set()
            await pings
        assert round_trips and max(round_trips) < STALL_LIMIT_S, f"longest ping {max(round_trips):.2f}s"

        cmid = await sender.send(f"hello {words[77_777]} there", to="bob")
        error = await sender.wait_for(lambda f: f.get("type") == "error" and f.get("ref") == cmid)
        assert error["code"] == "rejected", error
        await pinger.close()
        await sender.close()
