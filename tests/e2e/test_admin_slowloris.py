"""Slowloris on the admin port of a real `flarectl up` (issue 10 item 6).

The server runs with a small file-handle limit (RLIMIT_NOFILE 256) so that what took
20,000 connections on a default box takes 300 here: before the fix every trickling
connection kept a handle, the process ran out, and new WebSocket clients and /healthz
both failed. Now the admin server holds at most its cap, drops the oldest at the cap and
closes every connection at its overall deadline."""

from __future__ import annotations

import asyncio
import resource
import signal
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.infra.base import free_port, port_open, wait_until

from .wsclient import WsClient

REPO = Path(__file__).resolve().parents[2]
TRICKLERS = 300


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


async def _trickle(port: int, alive: list[bool], index: int) -> None:
    """Send a request head one header line per second, forever (never the blank line)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        alive[index] = False
        return
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        while True:
            await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                    break  # the server closed us
            except asyncio.TimeoutError:
                pass
            writer.write(b"X-Slow: 1\r\n")
    except (ConnectionError, OSError):
        pass
    finally:
        alive[index] = False
        writer.close()


async def test_trickling_admin_connections_starve_neither_healthz_nor_the_gateway(tmp_path):
    data_dir, port, admin_port = tmp_path / "flare", free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flarectl.main", "up", "--data-dir", str(data_dir), "--port", str(port),
         "--admin-port", str(admin_port), "--controlplane-port", "0", "--log-format", "json"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=_limit_files,
    )
    tasks: list[asyncio.Task] = []
    try:
        assert wait_until(lambda: (port_open(port) and port_open(admin_port)) or proc.poll() is not None,
                          timeout=30, interval=0.1) and proc.poll() is None, "flarectl up did not start"
        secret = (data_dir / "token.secret").read_bytes().strip()
        alive = [True] * TRICKLERS
        for i in range(TRICKLERS):
            tasks.append(asyncio.create_task(_trickle(admin_port, alive, i)))
            if i % 50 == 49:
                await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # every trickler has connected and sent a few lines

        started = time.monotonic()
        async with httpx.AsyncClient(timeout=5) as http:
            health = await http.get(f"http://127.0.0.1:{admin_port}/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert time.monotonic() - started < 2.0

        clients = [await WsClient(f"ws://127.0.0.1:{port}/ws", secret, f"user{i}").connect() for i in range(20)]
        await clients[0].send("still here", to="user1")
        await clients[1].wait_for(lambda f: f.get("type") == "message" and f.get("body") == "still here")
        for client in clients:
            await client.close()

        # The deadline (5 s from accept) ends every trickler, however patiently it trickles.
        for _ in range(100):
            if not any(alive):
                break
            await asyncio.sleep(0.1)
        assert not any(alive), f"{sum(alive)} tricklers still open 12 s after they connected"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def test_admin_server_caps_connections_and_answers_plain_http():
    from services.common.adminhttp import AdminServer

    server = AdminServer("127.0.0.1", 0, health=lambda: {"status": "degraded"}, max_connections=4,
                         request_deadline_s=1.0)
    await server.start()
    try:
        idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(10)]
        await asyncio.sleep(0.2)
        assert server.open_connections <= 4 and server.dropped >= 6
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=3) as http:
            assert (await http.get("/healthz")).status_code == 503  # not ok -> 503, body says why
            assert (await http.get("/healthz")).json() == {"status": "degraded"}
            assert (await http.get("/nope")).status_code == 404
            assert (await http.post("/metrics", content=b"x")).status_code in (405, 413)
            assert "flare_connections" in (await http.get("/metrics")).text
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 3) == b""  # a head over 16 KiB is refused
        await asyncio.sleep(1.2)
        assert server.open_connections == 0  # the idle ones hit the deadline
        for _, w in idle:
            w.close()
    finally:
        await server.stop()
