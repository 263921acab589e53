"""End-to-end benchmark: a monolith in a subprocess, the load test engine against it.

    python bench/e2e_bench.py [--users 100 --devices-per-user 2 --rate 400 --duration 20 --workers 1] [--split]

Starts `flarectl up` on free ports with a temporary data dir, drives it with
users × devices clients (200 by default) and prints one JSON object: achieved messages/s,
send → deliver latency percentiles, lost / duplicated counts, CPU of tester and server.
A benchmark, not a test: it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flarectl.loadtest import build_params, run_loadtest  # noqa: E402
from tests.infra.base import free_port, metrics_text, wait_listening  # noqa: E402


def run_trial(*, users: int, devices_per_user: int, groups: int, group_size: int, rate: float, duration: float,
              churn: float = 0, workers: int = 1, group_fraction: float | None = None,
              profile: Path | None = None, up_args: list[str] | None = None, idle: int = 0,
              compact: bool = True, stall_ms: float | None = None, server_log: Path | None = None,
              server_env: dict[str, str] | None = None) -> dict:
    """One monolith in a subprocess, one load test against it; the summary as a dict.

    `profile`: record the server's Python stacks with py-spy (the `bench` extra) while the
    load runs, as a speedscope/flamegraph file there (by its suffix) plus `.top.txt`, the
    top frames by own time. `up_args`: extra `flarectl up` options. `idle`: that many more
    clients (bench/idle_clients.py) connect first and stay idle through the run; the summary
    then says how much server memory each of them costs. `stall_ms`: the server logs where its
    loop was whenever it stalls longer (services.common.stalls); `server_log`: keep its log there.
    `server_env`: settings for the server only (e.g. FLARE_GATEWAY__WEBSOCKET=picows); the
    caller's own FLARE_* variables never reach it."""
    with tempfile.TemporaryDirectory(prefix="flare-bench-") as tmp:
        data_dir = Path(tmp) / "flare"
        port, admin = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLARE_")}
        if stall_ms:
            env["FLARE_STALL_REPORT_MS"] = str(stall_ms)
        env.update(server_env or {})
        server = subprocess.Popen(
            [sys.executable, "-m", "flarectl.main", "up", "--data-dir", str(data_dir), "--port", str(port),
             "--admin-port", str(admin), "--controlplane-port", "0", "--log-level", "warning", *(up_args or [])],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(Path(tmp) / "server.log", "w"),
        )
        idlers: list[subprocess.Popen] = []
        memory: dict = {}
        try:
            wait_listening(port)
            time.sleep(1.0)  # gateway workers bind after the core
            memory["rss_mb_start"] = _tree_rss_mb(server.pid)
            if idle:
                idlers, connected = _open_idle(f"ws://127.0.0.1:{port}/ws", data_dir / "token.secret", idle)
                time.sleep(2.0)
                memory["idle_connected"] = connected
                memory["rss_mb_with_idle"] = _tree_rss_mb(server.pid)
                memory["bytes_per_idle_connection"] = round(
                    (memory["rss_mb_with_idle"] - memory["rss_mb_start"]) * 2**20 / max(1, connected))
            peak = _PeakRss(server.pid)
            extra = {} if group_fraction is None else {"group_fraction": group_fraction}
            params = build_params(
                gateway=f"ws://127.0.0.1:{port}/ws", token_secret_file=data_dir / "token.secret", users=users,
                devices_per_user=devices_per_user, groups=groups, group_size=group_size,
                rate=rate, duration=duration, churn=churn, workers=workers,
                server_pid=server.pid, drain_timeout=30, seed=1, compact=compact, **extra,
            )
            spy = _start_profile(server.pid, profile, duration) if profile else None
            report = asyncio.run(run_loadtest(params))
            memory["rss_mb_peak"] = peak.stop()
            memory["rss_mb_end"] = _tree_rss_mb(server.pid)
            stages, stage_p99 = _stages([("flarectl up", admin)])
            blocking = _blocking_jobs(admin)
            if spy is not None:
                spy.wait(timeout=duration + 60)
        finally:
            for idler in idlers:
                idler.stdin.close()
            for idler in idlers:
                try:
                    idler.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    idler.kill()
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
            if server_log is not None:
                shutil.copyfile(Path(tmp) / "server.log", server_log)
    return {**summarize(report), "memory": memory, "stage_mean_ms": stages, "stage_p99_ms": stage_p99,
            "blocking_jobs": blocking}


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (the core and its gateway workers)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry)] = int(fields.get("PPid", "0").strip() or 0)
        rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0] or 0)
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo.extend(p for p, parent in parents.items() if parent == current)
    return round(total / 1024, 1)


class _PeakRss:
    def __init__(self, pid: int, interval_s: float = 1.0) -> None:
        self.peak = 0.0
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.wait(interval_s):
                self.peak = max(self.peak, _tree_rss_mb(pid))

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def _open_idle(gateway: str, secret_file: Path, count: int, per_process: int = 2500) -> tuple[list, int]:
    procs = []
    for offset in range(0, count, per_process):
        procs.append(subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("idle_clients.py")), "--gateway", gateway,
             "--secret-file", str(secret_file), "--count", str(min(per_process, count - offset)),
             "--offset", str(offset)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT))
    connected = 0
    for proc in procs:
        line = proc.stdout.readline().split()
        connected += int(line[1]) if len(line) > 1 and line[0] == "ready" else 0
    return procs, connected


def run_split_trial(*, users: int, devices_per_user: int, groups: int, group_size: int, rate: float,
                    duration: float, churn: float = 0, workers: int = 1, group_fraction: float | None = None,
                    routers: int = 2, stores: int = 2) -> dict:
    """The split deployment (every service its own process) on real servers from tests/infra,
    one gateway so the load tester's clients all reach it, `routers` routers and `stores` stores."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from backends_bench import acquire_servers, release_servers

    from tests.integration.split_harness import SERVER_KINDS, split_on

    servers, started = acquire_servers(list(SERVER_KINDS))

    async def trial() -> dict:
        with tempfile.TemporaryDirectory(prefix="flare-bench-split-") as tmp:
            async with split_on(Path(tmp), servers, gateways=1, routers=routers, stores=stores, partitions=8) as sut:
                extra = {} if group_fraction is None else {"group_fraction": group_fraction}
                params = build_params(
                    gateway=sut.deployment.gateway_urls[0], token_secret=sut.deployment.secret.decode(),
                    users=users, devices_per_user=devices_per_user, groups=groups, group_size=group_size,
                    rate=rate, duration=duration, churn=churn, workers=workers, drain_timeout=30, seed=1, **extra,
                )
                report = await run_loadtest(params)
                stages = await asyncio.to_thread(_stages, [(p.instance_id, p.ports.get("admin"))
                                                           for p in sut.deployment.processes])
                return report, stages

    try:
        report, (stages, stage_p99) = asyncio.run(trial())
        result = summarize(report)
    finally:
        release_servers(started)
    result["bench"] = f"e2e_split_{routers}routers_{stores}stores_1gateway"
    result["stage_mean_ms"] = stages
    result["stage_p99_ms"] = stage_p99
    return result


_STAGE_SAMPLE = re.compile(r'^flare_(stage_seconds|ack_latency_seconds)_(sum|count)\{(?:stage|level)="([a-z_]+)"\} (\S+)$')
_LOOP_LAG = re.compile(r"^flare_event_loop_lag_seconds (\S+)$")
_LOG_WRITE = re.compile(r"^flare_log_write_seconds_(sum|count) (\S+)$")
_BLOCKING = re.compile(r'^flare_blocking_jobs_total\{job="([a-z_]+)",place="([a-z]+)"\} (\S+)$')
_STAGE_BUCKET = re.compile(
    r'^flare_(stage_seconds|ack_latency_seconds)_bucket\{(?:le="([^"]+)",)?(?:stage|level)="([a-z_]+)"(?:,le="([^"]+)")?\} (\S+)$')


def _stages(processes: list[tuple[str, int | None]]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, str]]]:
    """Per server process (name, admin port), from one read of its /metrics: the mean of every
    flare_stage_seconds / flare_ack_latency_seconds series (where a send's time goes, hop by
    hop) and the bucket holding each one's 99th percentile (which hop has the tail)."""
    means: dict[str, dict[str, float]] = {}
    p99s: dict[str, dict[str, str]] = {}
    for name, port in processes:
        text = metrics_text(port) if port else None
        if text is None:
            continue
        if stages := _stage_means(text):
            means[name] = stages
        if tails := _stage_p99s(text):
            p99s[name] = tails
    return means, p99s


def _blocking_jobs(port: int) -> dict[str, dict[str, int]]:
    """Per short blocking job of the embedded backends, how many ran on the loop and how
    many on their thread (services/backends/embedded/_placement.py)."""
    jobs: dict[str, dict[str, int]] = {}
    for line in (metrics_text(port) or "").splitlines():
        if match := _BLOCKING.match(line):
            job, place, value = match.groups()
            jobs.setdefault(job, {})[place] = int(float(value))
    return jobs


def _stage_means(text: str) -> dict[str, float]:
    sums: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        lag = _LOOP_LAG.match(line)
        if lag:
            sums["loop_lag"] = {"sum": float(lag.group(1)), "count": 1.0}
        write = _LOG_WRITE.match(line)
        if write:  # the embedded log's append jobs: the disk's (or a thread hop's) share of produce
            sums.setdefault("log_write", {})[write.group(1)] = float(write.group(2))
        match = _STAGE_SAMPLE.match(line)
        if match:
            family, kind, label, value = match.groups()
            series = label if family == "stage_seconds" else f"ack_{label}"
            sums.setdefault(series, {})[kind] = float(value)
    return {series: round(1000 * v["sum"] / v["count"], 2) for series, v in sums.items() if v.get("count")}


def _stage_p99s(text: str) -> dict[str, str]:
    """Per series, the histogram bucket that holds the 99th percentile ("<=20" ms; the
    buckets are services.common.metrics.LATENCY_BUCKETS)."""
    buckets: dict[str, list[tuple[float, float]]] = {}
    for line in text.splitlines():
        match = _STAGE_BUCKET.match(line)
        if match:
            family, le_first, label, le_last, value = match.groups()
            series = label if family == "stage_seconds" else f"ack_{label}"
            buckets.setdefault(series, []).append((float(le_first or le_last), float(value)))
    found = {}
    for series, counts in buckets.items():
        counts.sort()
        total = counts[-1][1]
        if total:
            bound = next(le for le, n in counts if n >= 0.99 * total)
            found[series] = "inf" if bound == float("inf") else f"<={1000 * bound:g}"
    return found


def _start_profile(pid: int, out: Path, duration: float) -> subprocess.Popen:
    """py-spy over the server and its gateway workers, the GIL holders only (--gil), for
    the sending phase; the top frames are written next to `out` as text."""
    spy = Path(sys.executable).with_name("py-spy")
    fmt = "speedscope" if out.suffix == ".json" else "flamegraph" if out.suffix == ".svg" else "raw"
    return subprocess.Popen(
        [str(spy), "record", "--pid", str(pid), "--subprocesses", "--gil", "--nonblocking", "--rate", "200",
         "--duration", str(max(1, int(duration))), "--format", fmt, "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=open(out.with_suffix(".log"), "w"))


def summarize(report: dict) -> dict:
    arrival = report["latency_ms"]["send_arrival"]
    return {
        "bench": "e2e_monolith",
        "clients": report["devices"],
        "users": report["users"],
        "groups": report["groups"],
        "workers": report["workers"],
        "target_rate": report["target_rate"],
        "messages_per_s": report["stored_rate"],
        "deliveries_per_s": round(report["received_live"] / report["duration_s"], 1) if report["duration_s"] else 0,
        "messages": report["stored"],
        "deliveries": report["deliveries_expected"],
        "send_deliver_p50_ms": arrival["p50"],
        "send_deliver_p99_ms": arrival["p99"],
        "send_deliver_p99_9_ms": arrival["p99_9"],
        "send_deliver_max_ms": arrival["max"],
        "send_stored_p50_ms": report["latency_ms"]["send_stored"]["p50"],
        "send_stored_p99_ms": report["latency_ms"]["send_stored"]["p99"],
        "lost": report["lost"],
        "shed": report["shed"],
        "shed_per_s": report["shed_rate"],
        "duplicated": report["duplicated"],
        "out_of_order": report["out_of_order"],
        "errors": report["errors"],
        "tester_cpu_pct": report["cpu"]["tester_pct"],  # over the whole run (connect, send, drain)
        "server_cpu_pct": report["cpu"]["server_pct"],
        "tester_cpu_pct_sending": report["cpu"]["sending_tester_pct"],  # while sending only
        "server_cpu_pct_sending": report["cpu"]["sending_server_pct"],
        "ok": report["ok"],
        "breached": report["breached"],
    }


def server_env(pairs: list[str]) -> dict[str, str]:
    """--server-env KEY=VALUE options as a dict."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--server-env wants KEY=VALUE, not {pair!r}")
        out[key] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--devices-per-user", type=int, default=2)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--group-fraction", type=float, default=None)
    parser.add_argument("--rate", type=float, default=400)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--churn", type=float, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy the server while sending: FILE.txt (raw collapsed stacks), .svg or .json")
    parser.add_argument("--up-arg", action="append", default=[], help="extra `flarectl up` option (repeatable)")
    parser.add_argument("--compact", action=argparse.BooleanOptionalAction, default=True,
                        help="the load tester asks for compact frames (docs/protocol.md)")
    parser.add_argument("--idle", type=int, default=0, help="idle clients connected through the run (memory per connection)")
    parser.add_argument("--stall-ms", type=float, default=None,
                        help="the server logs where its event loop was in every stall longer than this")
    parser.add_argument("--server-log", type=Path, default=None, help="keep the server's log (stderr) here")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="an environment setting for the server only, e.g. FLARE_GATEWAY__WEBSOCKET=picows")
    parser.add_argument("--split", action="store_true",
                        help="the split deployment on real servers (tests/infra) instead of the embedded monolith")
    parser.add_argument("--routers", type=int, default=2, help="--split: router instances")
    parser.add_argument("--stores", type=int, default=2, help="--split: store instances")
    args = parser.parse_args()
    common = dict(users=args.users, devices_per_user=args.devices_per_user, groups=args.groups,
                  group_size=args.group_size, rate=args.rate, duration=args.duration, churn=args.churn,
                  workers=args.workers, group_fraction=args.group_fraction)
    if args.split:
        result = run_split_trial(**common, routers=args.routers, stores=args.stores)
        result["command"] = " ".join(["python", *sys.argv])
    else:
        result = run_trial(**common, profile=args.profile, up_args=args.up_arg, idle=args.idle, compact=args.compact,
                           stall_ms=args.stall_ms, server_log=args.server_log, server_env=server_env(args.server_env))
        result["command"] = " ".join(["python", *sys.argv])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
