"""The floor Flare is measured against: a bare WebSocket relay (websockets + uvloop).

    python bench/relay_anchor.py [--connections 200 --p99-ms 50 --low 2000 --high 80000 --duration 4]
        [--server picows]
    python bench/relay_anchor.py --compare 10000 [--reps 3]   # websockets vs picows, server CPU per delivery

The relay server (a subprocess) reads each text frame, takes the target connection from
its first field and writes the frame there unchanged: one relayed frame = one delivery.
No parsing beyond that, no storage, no acks: the per-frame cost of the WebSocket layer
and the event loop, on this machine, today. The driver spreads `connections` clients over
`--workers` processes (the load tester must not be the bottleneck), sends at a fixed
rate, and records send → arrival latency. It bisects the highest rate whose p99 stays
under --p99-ms with nothing lost and prints JSON. bench/max_rate.py runs it in the same
invocation and prints Flare's deliveries/s as a fraction of it. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# -- the relay ---------------------------------------------------------------------------
async def _serve(port: int) -> None:
    from websockets.asyncio.server import serve

    by_index: dict[bytes, object] = {}

    async def relay(ws) -> None:
        index = ws.request.path.rsplit("=", 1)[-1].encode()
        by_index[index] = ws
        try:
            async for frame in ws:
                # "<to>|<sent_ns>|<padding>": the target is the first field.
                raw = frame.encode() if isinstance(frame, str) else frame
                target = by_index.get(raw[:raw.index(b"|")])
                if target is not None:
                    await target.send(frame)
        except Exception:  # noqa: BLE001 - a client going away ends its reader, nothing else
            pass
        finally:
            by_index.pop(index, None)

    async with serve(relay, "127.0.0.1", port, compression=None, max_queue=1024, ping_interval=None):
        await asyncio.Event().wait()


async def _serve_picows(port: int) -> None:
    """The same relay on picows (the gateway's default layer): its frame parser and writer
    are Cython, so the difference in server CPU per delivery is what the WebSocket layer costs."""
    from picows import WSListener, WSMsgType, ws_create_server

    by_index: dict[bytes, object] = {}

    class Relay(WSListener):
        def __init__(self, index: bytes) -> None:
            self.index = index

        def on_ws_connected(self, transport) -> None:
            by_index[self.index] = transport

        def on_ws_frame(self, transport, frame) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                raw = frame.get_payload_as_bytes()
                target = by_index.get(raw[:raw.index(b"|")])
                if target is not None:
                    target.send(WSMsgType.TEXT, raw)
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

        def on_ws_disconnected(self, transport) -> None:
            if by_index.get(self.index) is transport:
                del by_index[self.index]

    def listener(request) -> Relay:
        return Relay(request.path.rsplit(b"=", 1)[-1])  # picows gives the path as bytes

    server = await ws_create_server(listener, "127.0.0.1", port)
    await server.serve_forever()


# -- the driver --------------------------------------------------------------------------
async def _drive(port: int, indices: list[int], peers: int, rate: float, duration: float, padding: int,
                 out, barrier) -> None:
    from websockets.asyncio.client import connect

    conns = [await connect(f"ws://127.0.0.1:{port}/r?i={i}", compression=None, max_queue=4096, ping_interval=None)
             for i in indices]
    latencies: list[int] = []
    received = 0
    pad = "x" * padding
    # Every driver connected before anyone sends, and all stop together: a frame for a
    # peer that is not connected yet (or closed already) would read as a relay loss.
    barrier.wait(timeout=60)
    stop_at = time.monotonic() + duration

    async def reader(ws) -> None:
        nonlocal received
        try:
            async for frame in ws:
                now = time.time_ns()
                sent = int(frame.split("|", 2)[1])
                latencies.append(now - sent)
                received += 1
        except Exception:  # noqa: BLE001
            pass

    readers = [asyncio.create_task(reader(ws)) for ws in conns]
    sent = 0
    rng = random.Random(indices[0] if indices else 0)
    start = time.monotonic()
    tick = 0.002
    while time.monotonic() < stop_at:
        due = int((time.monotonic() - start) * rate) - sent
        per_conn: dict[int, list[str]] = {}
        now_ns = time.time_ns()
        for _ in range(max(0, due)):
            per_conn.setdefault(sent % len(conns), []).append(f"{rng.randrange(peers)}|{now_ns}|{pad}")
            sent += 1
        # The driver must not be the bottleneck: all of a connection's frames of this tick
        # in one write (websockets' send_context, as Flare's gateway writer does).
        for index, frames in per_conn.items():
            ws = conns[index]
            async with ws.send_context():
                for frame in frames:
                    ws.protocol.send_text(frame.encode())
                ws.transport.write(b"".join(ws.protocol.data_to_send()))
        await asyncio.sleep(tick)
    await asyncio.sleep(2.0)  # drain
    for ws in conns:
        await ws.close()
    for task in readers:
        task.cancel()
    out.put({"sent": sent, "received": received, "latencies": latencies})


def _driver_process(port: int, indices: list[int], peers: int, rate: float, duration: float, padding: int,
                    out, barrier) -> None:
    try:
        import uvloop
        uvloop.run(_drive(port, indices, peers, rate, duration, padding, out, barrier))
    except ImportError:  # pragma: no cover
        asyncio.run(_drive(port, indices, peers, rate, duration, padding, out, barrier))


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def run_relay_trial(*, port: int, server_pid: int, connections: int, rate: float, duration: float,
                    workers: int, padding: int) -> dict:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    barrier = ctx.Barrier(workers)
    groups = [list(range(w, connections, workers)) for w in range(workers)]
    cpu_before = _cpu_s(server_pid)
    procs = [ctx.Process(target=_driver_process, args=(port, g, connections, rate / workers, duration, padding, out, barrier))
             for g in groups]
    for p in procs:
        p.start()
    results = [out.get(timeout=duration + 60) for _ in procs]
    for p in procs:
        p.join(10)
    server_cpu = (_cpu_s(server_pid) - cpu_before) / duration * 100
    sent = sum(r["sent"] for r in results)
    received = sum(r["received"] for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1e6, 2) if latencies else 0.0

    return {"rate": rate, "sent": sent, "deliveries_per_s": round(received / duration, 1), "lost": sent - received,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "server_cpu_pct": round(server_cpu, 1)}


@contextlib.contextmanager
def _relay_server(impl: str):
    """A relay server subprocess on a free port: yields (port, pid); stopped on the way out."""
    sys.path.insert(0, str(ROOT))
    from tests.infra.base import free_port, wait_listening

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "serve", "--port", str(port), "--impl", impl], cwd=ROOT,
                              stdout=subprocess.DEVNULL)
    try:
        wait_listening(port)
        yield port, server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def max_relay_rate(*, connections: int = 200, p99_ms: float = 50, low: float = 2000, high: float = 80000,
                   steps: int = 5, duration: float = 4, workers: int = 2, padding: int = 120,
                   log=None, server_impl: str = "websockets") -> dict:
    """Start the relay, bisect the highest deliveries/s at p99 <= p99_ms with nothing lost.
    `server_impl`: websockets (the anchor) or picows (what a faster WebSocket layer gives)."""
    trials: list[dict] = []
    with _relay_server(server_impl) as (port, server_pid):

        def passes(rate: float) -> bool:
            result = run_relay_trial(port=port, server_pid=server_pid, connections=connections, rate=rate,
                                     duration=duration, workers=workers, padding=padding)
            result["passed"] = (result["p99_ms"] <= p99_ms and result["lost"] == 0
                                and result["deliveries_per_s"] >= 0.95 * rate)
            trials.append(result)
            if log is not None:
                print(json.dumps({"relay": result}), file=log)
            return result["passed"]

        best = low if passes(low) else 0.0
        if best and passes(high):
            best = high
        else:
            for _ in range(steps if best else 0):
                mid = round((low + high) / 2)
                if passes(mid):
                    best = low = mid
                else:
                    high = mid
    best_trial = max((t for t in trials if t["passed"]), key=lambda t: t["rate"], default=None)
    return {"bench": "relay_anchor", "server": server_impl, "connections": connections, "p99_bound_ms": p99_ms,
            "max_deliveries_per_s": best_trial["deliveries_per_s"] if best_trial else 0.0,
            "frame_bytes": padding + 24, "trials": trials}


def compare_servers(*, rate: float, reps: int = 3, connections: int = 200, duration: float = 4, workers: int = 2,
                    padding: int = 120, log=None) -> dict:
    """Both relays at one fixed rate, alternating `reps` times: server CPU per delivery is
    the figure (on a noisy shared VM, alternating pairs are what can be compared)."""
    runs: list[dict] = []
    for _ in range(reps):
        for impl in ("websockets", "picows"):
            with _relay_server(impl) as (port, server_pid):
                result = run_relay_trial(port=port, server_pid=server_pid, connections=connections, rate=rate,
                                         duration=duration, workers=workers, padding=padding)
            result["server"] = impl
            result["server_cpu_us_per_delivery"] = round(
                result["server_cpu_pct"] / 100 / max(1.0, result["deliveries_per_s"]) * 1e6, 1)
            runs.append(result)
            if log is not None:
                print(json.dumps({"relay": result}), file=log)

    def mean(impl: str, key: str) -> float:
        values = [r[key] for r in runs if r["server"] == impl]
        return round(sum(values) / len(values), 2)

    return {"bench": "relay_compare", "rate": rate, "connections": connections, "reps": reps,
            "server_cpu_us_per_delivery": {i: mean(i, "server_cpu_us_per_delivery") for i in ("websockets", "picows")},
            "p99_ms": {i: mean(i, "p99_ms") for i in ("websockets", "picows")}, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--impl", choices=["websockets", "picows"], default="websockets")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--p99-ms", type=float, default=50)
    parser.add_argument("--low", type=float, default=2000)
    parser.add_argument("--high", type=float, default=80000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--duration", type=float, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server", choices=["websockets", "picows"], default="websockets",
                        help="the relay's WebSocket library")
    parser.add_argument("--compare", type=float, default=None, metavar="RATE",
                        help="instead of bisecting: both relays at this rate, alternating --reps times")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    if args.compare is not None:
        print(json.dumps(compare_servers(rate=args.compare, reps=args.reps, connections=args.connections,
                                         duration=args.duration, workers=args.workers, log=sys.stderr), indent=2))
        return
    if args.command == "serve":
        serve_forever = _serve_picows if args.impl == "picows" else _serve
        try:
            import uvloop
            uvloop.run(serve_forever(args.port))
        except ImportError:  # pragma: no cover
            asyncio.run(serve_forever(args.port))
        return
    result = max_relay_rate(connections=args.connections, p99_ms=args.p99_ms, low=args.low, high=args.high,
                            steps=args.trials, duration=args.duration, workers=args.workers, log=sys.stderr,
                            server_impl=args.server)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
