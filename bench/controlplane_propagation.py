"""Propagation latency: `config apply` -> every one of N agents has applied the new version.

The daemon runs as its own process (`python -m controlplane`) on a real etcd; the N agents
are ConfigAgents in this process, each with its own gRPC stream to the daemon (so the
daemon's fan-out and the wire are real; the agents share one event loop). Per round we time
from just before AdminClient.apply() to the moment the last agent's applier ran (it ACKs
right after). Prints JSON.

    python bench/controlplane_propagation.py [--etcd etcd://127.0.0.1:2379] [--rounds 30] [--agents 1,10,50]
    python bench/controlplane_propagation.py --agents 50 --filter-words 10000 --rounds 5   # real FilterServices
    python bench/controlplane_propagation.py --agents 1000 --rounds 5 --acked

`--filter-words N` pushes a filter-rules document of N words (the agents only record it; add
`--real-filter` to build each agent's matcher before it ACKs, serialised in this one process,
and the JSON reports what one instance's FilterService takes on its own). `--acked` also times apply -> every instance
reported SYNCED in the control plane's aggregated picture (what `config apply --wait` waits
for), besides apply -> last applier ran.

Without --etcd, an etcd is started through tests/infra (installed if missing).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controlplane.agent import ConfigAgent  # noqa: E402
from controlplane.aggregate import apply_changes  # noqa: E402
from controlplane.client import AdminClient  # noqa: E402
from services.filter.service import FilterService  # noqa: E402
from tests.integration.cp_harness import start_daemon  # noqa: E402


_MARKERS = itertools.count(1)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _filter_spec(words: int, marker: int) -> dict:
    return {"sensitive_words": [f"w{marker}-{i:05d}" for i in range(words)]}


async def _all_synced(admin: AdminClient, run: str, kind: str, version: int, n_agents: int) -> float:
    picture = None
    async for update in admin.watch():
        picture = apply_changes(picture, update)
        synced = sum(1 for row in picture["rows"].values() if row["instance_id"].startswith(f"agent-{run}-")
                     and any(k["kind"] == kind and k["state"] == "SYNCED" and k["applied_version"] == version
                             for k in row["kinds"]))
        if synced >= n_agents:
            return time.perf_counter()
    raise RuntimeError("watch ended")


def _cpu_s(pid: int | None) -> float:
    """utime + stime of a process (the daemon's share of each round), 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(address: str, token: str, n_agents: int, rounds: int, workdir: Path, *, filter_words: int = 0,
                  acked: bool = False, real_filter: bool = False, daemon_pid: int | None = None,
                  agent_token: str | None = None) -> dict:
    applied_at: dict[tuple[int, int], float] = {}
    kind = "filter-rules" if filter_words else "routing"

    def applier_for(index: int):
        if filter_words:
            service = FilterService() if real_filter else None

            async def apply_rules(document: dict) -> None:
                if service is not None:
                    await service.apply_config("filter-rules", document)
                marker = int(document["sensitive_words"][0]["word"].split("-")[0][1:])
                applied_at[(index, marker)] = time.perf_counter()
            return apply_rules

        async def apply(document: dict) -> None:
            applied_at[(index, int(document["route_cache_ttl"]))] = time.perf_counter()
        return apply

    run = uuid.uuid4().hex[:6]
    agents = [ConfigAgent("bench", f"agent-{run}-{i}", f"127.0.0.1:{20000 + i}", {kind: applier_for(i)},
                          workdir / f"{run}-{i}", address, token=agent_token or token) for i in range(n_agents)]
    for agent in agents:
        await agent.start()
    await asyncio.wait_for(asyncio.gather(*(a.connected.wait() for a in agents)), 30)
    latencies: list[float] = []
    acked_latencies: list[float] = []
    daemon_cpu: list[float] = []
    firsts: list[float] = []
    async with AdminClient(address, token=token, timeout_s=60.0) as admin:
        for r in range(rounds + 2):  # the first two are warm-up
            marker = next(_MARKERS)  # a value no earlier round used, so every round is a change
            spec = _filter_spec(filter_words, marker) if filter_words else {"route_cache_ttl": marker}
            start = time.perf_counter()
            cpu_before = _cpu_s(daemon_pid)
            result = await admin.apply({"kind": kind, "spec": spec})
            waiter = asyncio.create_task(_all_synced(admin, run, kind, result["version"], n_agents)) if acked else None
            while not all((i, marker) in applied_at for i in range(n_agents)):
                await asyncio.sleep(0.0005)
            synced_at = await waiter if waiter is not None else None
            if r >= 2:
                await asyncio.sleep(0.3)  # the ACKs' status writes land, then read the daemon's CPU
                daemon_cpu.append(_cpu_s(daemon_pid) - cpu_before)
                latencies.append(max(applied_at[(i, marker)] for i in range(n_agents)) - start)
                firsts.append(min(applied_at[(i, marker)] for i in range(n_agents)) - start)
                if synced_at is not None:
                    acked_latencies.append(synced_at - start)
    for agent in agents:
        await agent.stop()
    ms = [x * 1000 for x in latencies]
    out = {"agents": n_agents, "kind": kind, "filter_words": filter_words, "rounds": rounds,
           "p50_ms": round(statistics.median(ms), 2), "p99_ms": round(_pct(ms, 0.99), 2),
           "min_ms": round(min(ms), 2), "max_ms": round(max(ms), 2),
           "first_applier_ms_p50": round(statistics.median(firsts) * 1000, 2),
           "daemon_cpu_ms_per_apply_p50": round(statistics.median(daemon_cpu) * 1000, 1) if daemon_cpu else None}
    if acked_latencies:
        acked_ms = [x * 1000 for x in acked_latencies]
        out["all_synced_in_picture"] = {"p50_ms": round(statistics.median(acked_ms), 2),
                                        "p99_ms": round(_pct(acked_ms, 0.99), 2)}
    return out


def _service_token(data_dir: Path) -> str:
    """Instances subscribe with a `service` token (an admin one may not), minted with the
    daemon's own secret from its data dir."""
    from services.common.auth import issue_token
    from services.common.paths import read_secret

    secret = read_secret(data_dir)
    assert secret is not None, f"no token.secret in {data_dir}"
    return issue_token(secret, "bench-agents", ttl_s=3600, role="service")


async def _one_filter_apply(words: int) -> dict:
    """What one instance spends applying the document (its own CPU, in parallel across instances)."""
    from services.common.documents import validate_spec

    times = []
    for marker in range(3):
        spec = validate_spec("filter-rules", _filter_spec(words, 900_000 + marker))
        service = FilterService()
        start = time.perf_counter()
        await service.apply_config("filter-rules", spec)
        times.append((time.perf_counter() - start) * 1000)
    return {"one_filter_service_apply_ms": round(statistics.median(times), 1), "filter_words": words}


async def main_async(args: argparse.Namespace) -> dict:
    etcd_url, server = args.etcd, None
    if not etcd_url:
        from tests.infra.servers import start_server

        server = start_server("etcd")
        etcd_url = server.url
    workdir = Path(tempfile.mkdtemp(prefix="cp-bench-"))
    daemon, address, token = start_daemon(f"{etcd_url}/bench-{uuid.uuid4().hex[:6]}", workdir / "cp", resync=10.0)
    try:
        results = [await measure(address, token, n, args.rounds, workdir, filter_words=args.filter_words,
                                 acked=args.acked, real_filter=args.real_filter, daemon_pid=daemon.popen.pid,
                                 agent_token=_service_token(workdir / "cp"))
                   for n in args.agents]
        if args.filter_words:
            results.append(await _one_filter_apply(args.filter_words))
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
    parser.add_argument("--filter-words", type=int, default=0, help="push filter-rules of N words instead of routing")
    parser.add_argument("--real-filter", action="store_true",
                        help="with --filter-words: every agent applies to a real FilterService (serialised here: "
                             "all agents share this process)")
    parser.add_argument("--acked", action="store_true", help="also time until every instance is SYNCED in the picture")
    print(json.dumps(asyncio.run(main_async(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
