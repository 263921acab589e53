"""The monolith killed with SIGKILL mid-traffic, then restarted: nothing STORED is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from services.common.model import c2c_conversation_id
from tests.infra.base import free_port, port_open, wait_until

from .wsclient import WsClient

REPO = Path(__file__).resolve().parents[2]


def _start(data_dir: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flarectl.main", "up", "--data-dir", str(data_dir), "--port", str(port),
         "--admin-port", "0", "--controlplane-port", "0", "--log-format", "json"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    # Stop waiting early if the process died: its output says why.
    if wait_until(lambda: port_open(port) or proc.poll() is not None, timeout=30, interval=0.1) and port_open(port):
        return proc
    if proc.poll() is not None:
        raise RuntimeError(proc.stdout.read().decode())
    proc.kill()
    raise RuntimeError("flarectl up did not open its port")


async def test_sigkill_mid_traffic_loses_nothing_stored(tmp_path):
    data_dir, port = tmp_path / "flare", free_port()
    proc = _start(data_dir, port)
    url = f"ws://127.0.0.1:{port}/ws"
    secret = (data_dir / "token.secret").read_bytes().strip()
    senders = [await WsClient(url, secret, f"user{i}", auto_ack=False).connect() for i in range(4)]
    stored: dict[str, str] = {}  # msg_id -> conversation

    async def pump(client: WsClient, peer: str) -> None:
        conv = c2c_conversation_id(client.user, peer)
        try:
            for n in range(100_000):
                await client.send(f"m{n}", to=peer)
                if n % 20 == 0:
                    await asyncio.sleep(0.005)
        except Exception:
            pass  # the server died under us
        for frame in client.frames:
            if frame.get("level") == "stored":
                stored[frame["msg_id"]] = conv

    tasks = [asyncio.create_task(pump(c, f"peer{i % 2}")) for i, c in enumerate(senders)]
    while sum(1 for c in senders for f in c.frames if f.get("level") == "stored") < 400:
        await asyncio.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    await asyncio.gather(*tasks)
    assert len(stored) >= 400

    proc = _start(data_dir, port)
    try:
        for peer in ("peer0", "peer1"):
            reader = await WsClient(url, secret, peer, "fresh-device", auto_ack=False).connect()
            await asyncio.sleep(1.0)  # let the restarted store consumer finish the log's tail
            got = await reader.sync_all()
            await reader.close()
            for conv, messages in got.items():
                seqs = [m["seq"] for m in messages]
                assert seqs == list(range(1, len(seqs) + 1)), f"gap or duplicate in {conv}"
                assert len({m["msg_id"] for m in messages}) == len(messages)
                received = {m["msg_id"] for m in messages}
                missing = [mid for mid, c in stored.items() if c == conv and mid not in received]
                assert not missing, f"{len(missing)} STORED messages lost in {conv}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    for c in senders:
        await c.close()
