"""Propagation latency: `config apply` -> every one of N agents has applied the new version.

The daemon runs as its own process (`python -m controlplane`) on a real etcd; the N agents
are ConfigAgents in this process, each with its own gRPC stream to the daemon (so the
daemon's fan-out and the wire are real; the agents share one event loop). Per round we time
from just before AdminClient.apply() to the moment the last agent's applier ran (it ACKs
right after). Prints JSON.

    python bench/controlplane_propagation.py [--etcd etcd://127.0.0.1:2379] [--rounds 30] [--agents 1,10,50]

Without --etcd, an etcd is started through tests/infra (installed if missing).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controlplane.agent import ConfigAgent  # noqa: E402
from controlplane.client import AdminClient  # noqa: E402
from tests.integration.cp_harness import start_daemon  # noqa: E402


_MARKERS = itertools.count(1)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def measure(address: str, token: str, n_agents: int, rounds: int, workdir: Path) -> dict:
    applied_at: dict[tuple[int, int], float] = {}

    def applier_for(index: int):
        async def apply(document: dict) -> None:
            applied_at[(index, int(document["route_cache_ttl"]))] = time.perf_counter()
        return apply

    run = uuid.uuid4().hex[:6]
    agents = [ConfigAgent("bench", f"agent-{run}-{i}", f"127.0.0.1:{20000 + i}", {"routing": applier_for(i)},
                          workdir / f"{run}-{i}", address, token=token) for i in range(n_agents)]
    for agent in agents:
        await agent.start()
    await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents)), 30)
    latencies: list[float] = []
    async with AdminClient(address, token=token) as admin:
        for r in range(rounds + 2):  # the first two are warm-up
            marker = next(_MARKERS)  # a route_cache_ttl no earlier round used, so every round is a change
            start = time.perf_counter()
            await admin.apply({"kind": "routing", "spec": {"route_cache_ttl": marker}})
            while not all((i, marker) in applied_at for i in range(n_agents)):
                await asyncio.sleep(0.0005)
            if r >= 2:
                latencies.append(max(applied_at[(i, marker)] for i in range(n_agents)) - start)
    for agent in agents:
        await agent.stop()
    ms = [x * 1000 for x in latencies]
    return {"agents": n_agents, "rounds": rounds, "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(_pct(ms, 0.99), 2), "min_ms": round(min(ms), 2), "max_ms": round(max(ms), 2)}


async def main_async(args: argparse.Namespace) -> dict:
    etcd_url, server = args.etcd, None
    if not etcd_url:
        from tests.infra.servers import start_server

        server = start_server("etcd")
        etcd_url = server.url
    workdir = Path(tempfile.mkdtemp(prefix="cp-bench-"))
    daemon, address, token = start_daemon(f"{etcd_url}/bench-{uuid.uuid4().hex[:6]}", workdir / "cp", resync=10.0)
    try:
        results = [await measure(address, token, n, args.rounds, workdir) for n in args.agents]
    finally:
        daemon.stop()
        if server is not None and getattr(server, "owned", False):
            server.destroy()
    return {"benchmark": "controlplane_propagation", "store": "etcd (real server)", "daemon": "subprocess, gRPC",
            "agents": "in-process ConfigAgents, one gRPC stream each", "measure": "apply() call -> last agent applied",
            "results": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--etcd", help="etcd://host:port (default: start one via tests/infra)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--agents", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10, 50])
    print(json.dumps(asyncio.run(main_async(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
