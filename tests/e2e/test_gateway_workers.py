"""The monolith with its gateway in worker processes (`flarectl up --gateway-workers N`):
connections spread over the workers, /metrics adds the workers' counters, and a worker
that dies is started again without losing a message."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest
from prometheus_client import REGISTRY

from services.common.config import load_config
from services.common.model import c2c_conversation_id
from services.wiring.monolith import Monolith

from .wsclient import WsClient


def _sample(exposition: str, name: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.fixture
async def workers_monolith(tmp_path):
    cfg = load_config(environ={}, data_dir=tmp_path / "flare")
    cfg.gateway.port = cfg.admin.port = cfg.controlplane.port = 0
    cfg.gateway.workers = 2
    monolith = Monolith(cfg)
    await monolith.start()
    clients: list[WsClient] = []
    try:
        yield monolith, clients
    finally:
        for c in clients:
            await c.close()
        await monolith.stop()


async def _client(monolith, clients, user, device="phone", **kw) -> WsClient:
    c = WsClient(monolith.gateway_url, monolith.token_secret, user, device, **kw)
    await c.connect()
    clients.append(c)
    return c


async def test_connections_spread_over_workers_and_metrics_add_up(workers_monolith):
    monolith, clients = workers_monolith
    assert monolith.gateway is None and monolith.gateway_workers is not None
    users = [await _client(monolith, clients, f"u{i}") for i in range(24)]
    gateways = {next(f for f in u.frames if f["type"] == "hello")["connection_id"].split("/")[0] for u in users}
    assert gateways == set(monolith.gateway_workers.gateway_ids)  # SO_REUSEPORT used both
    # The core's counters live in this (the test's) process and carry earlier tests' counts.
    core_errors = REGISTRY.get_sample_value("flare_frame_errors_total", {"code": "bad_frame"}) or 0.0
    core_connections = REGISTRY.get_sample_value("flare_connections") or 0.0
    await users[0].send_raw("not json")
    await users[0].wait_for(lambda f: f.get("type") == "error" and f["code"] == "bad_frame")
    async with httpx.AsyncClient(base_url=monolith.admin_url) as http:
        metrics = (await http.get("/metrics")).text
    assert _sample(metrics, 'flare_frame_errors_total{code="bad_frame"}') == core_errors + 1
    assert _sample(metrics, "flare_connections") == core_connections + 24
    assert metrics.count("# HELP flare_connections ") == 1  # merged, not repeated


async def test_a_dead_worker_is_replaced_and_nothing_is_lost(workers_monolith):
    monolith, clients = workers_monolith
    alice = await _client(monolith, clients, "alice")
    conv = c2c_conversation_id("alice", "bob")
    for i in range(10):
        await alice.send(f"m{i}", conversation_id=conv)
    await alice.wait_count(lambda f: f.get("level") == "stored", 10)
    victim = monolith.gateway_workers._workers[0]
    old_pid = victim.process.pid
    os.kill(old_pid, signal.SIGKILL)
    for _ in range(200):  # restarted: a new process, ready again
        if victim.process.pid != old_pid and victim.ready.is_set():
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the worker was not started again")
    bobs = [await _client(monolith, clients, "bob", f"d{i}", auto_ack=False) for i in range(6)]
    for bob in bobs:
        got = (await bob.sync())["conversations"][conv]["messages"]
        assert [m["seq"] for m in got] == list(range(1, 11))
