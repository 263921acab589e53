"""The cost of the gRPC edge: filter.check and gateway.push(100) in-process vs over loopback gRPC.

    .venv/bin/python bench/grpc_bench.py [--seconds 2] [--concurrency 32] [--same-process]

The gRPC server runs in a child process (as in split mode; on this 2-core box it competes
with the client for CPU, as it would on a shared host). `sequential` is one call at a
time (latency); `concurrent` keeps `--concurrency` calls in flight on one channel
(throughput). The push batch is 100 deliveries of 50 distinct ~300-byte frames, the shape
the router sends for a burst of c2c messages (two devices per message). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.config import GatewayConfig  # noqa: E402
from services.common.ids import ConversationId, DeviceId, MessageIdGenerator, UserId  # noqa: E402
from services.common.model import Message  # noqa: E402
from services.delivery import Push  # noqa: E402
from services.filter import FilterService  # noqa: E402
from services.filter.client import GrpcFilterClient  # noqa: E402
from services.gateway import GatewayService, InProcessGatewayClient  # noqa: E402
from services.gateway.client import GrpcGatewayClient  # noqa: E402

RULES = {"sensitive_words": [f"word{i}" for i in range(1000)] + ["darn"], "action": "mask"}
MESSAGE = Message(
    msg_id=123456789, client_msg_id="c-1", conversation_id=ConversationId("c2c:alice:bob"),
    sender_id=UserId("alice"), sender_device=DeviceId("phone"), content_type="text",
    body={"text": "hello there, how is it going today? " * 4}, created_at=1_700_000_000_000,
)
CONNECTIONS = [f"gw-bench/{i}" for i in range(100)]
FRAMES = [b'{"type":"message","seq":%d,"body":"' % (i + 1) + b"x" * 260 + b'"}' for i in range(50)]
PUSH_BATCH = [Push(CONNECTIONS[i], "group:bench", i // 2 + 1, FRAMES[i // 2]) for i in range(100)]


class _Sink:
    """A connection that accepts every frame (the bench measures the edge, not WebSockets)."""

    def push(self, frame: bytes, conversation_id: str = "", seq: int = 0) -> bool:
        return True


def make_gateway() -> GatewayService:
    gateway = GatewayService(config=GatewayConfig(port=0), gateway_id="gw-bench", token_secret=b"bench",
                             router=None, sync=None, session=None, ids=MessageIdGenerator(1))  # type: ignore[arg-type]
    gateway._connections.update({c: _Sink() for c in CONNECTIONS})  # type: ignore[misc]
    return gateway


async def _serve_forever(ports: multiprocessing.Queue) -> None:
    from services.common.grpcio import start_server
    from services.filter.api import register as filter_api
    from services.gateway.api import register as gateway_api

    server = await start_server(filter_api(FilterService(RULES)), gateway_api(make_gateway()))
    ports.put(server.port)
    await server.wait()


def _server_process(ports: multiprocessing.Queue) -> None:
    asyncio.run(_serve_forever(ports))


async def sequential(call: Callable[[], Awaitable[object]], seconds: float) -> dict[str, float]:
    for _ in range(200):  # warm up: channel connected, caches hot
        await call()
    latencies: list[float] = []
    clock = time.perf_counter
    deadline = clock() + seconds
    while (start := clock()) < deadline:
        await call()
        latencies.append(clock() - start)
    return _summary(latencies, sum(latencies))


async def concurrent(call: Callable[[], Awaitable[object]], seconds: float, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    clock = time.perf_counter
    deadline = clock() + seconds

    async def worker() -> None:
        while (start := clock()) < deadline:
            await call()
            latencies.append(clock() - start)

    began = clock()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return _summary(latencies, clock() - began) | {"concurrency": concurrency}


def _summary(latencies: list[float], elapsed: float) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "calls": len(ordered),
        "calls_per_s": round(len(ordered) / elapsed),
        "p50_us": round(statistics.median(ordered) * 1e6, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] * 1e6, 1),
    }


async def run(seconds: float, concurrency: int, same_process: bool) -> dict[str, object]:
    process = None
    if same_process:
        from services.common.grpcio import start_server
        from services.filter.api import register as filter_api
        from services.gateway.api import register as gateway_api

        local = await start_server(filter_api(FilterService(RULES)), gateway_api(make_gateway()))
        port = local.port
    else:
        ctx = multiprocessing.get_context("spawn")
        ports: multiprocessing.Queue = ctx.Queue()
        process = ctx.Process(target=_server_process, args=(ports,), daemon=True)
        process.start()
        port = ports.get(timeout=30)
    target = f"127.0.0.1:{port}"
    try:
        in_filter = FilterService(RULES)  # its own in-process client
        in_gateway = InProcessGatewayClient(make_gateway())
        grpc_filter = GrpcFilterClient(target)
        grpc_gateway = GrpcGatewayClient(target, gateway_id="gw-bench")
        verdict = await grpc_filter.check(MESSAGE)
        assert verdict.action == "allow" and verdict.body == MESSAGE.body
        assert await grpc_gateway.push(PUSH_BATCH) == []

        results: dict[str, object] = {
            "server": "same process" if same_process else "child process",
            "seconds_per_case": seconds,
            "filter.check": {
                "inprocess": await sequential(lambda: in_filter.check(MESSAGE), seconds),
                "grpc_sequential": await sequential(lambda: grpc_filter.check(MESSAGE), seconds),
                "grpc_concurrent": await concurrent(lambda: grpc_filter.check(MESSAGE), seconds, concurrency),
            },
            "gateway.push(100)": {
                "inprocess": await sequential(lambda: in_gateway.push(PUSH_BATCH), seconds),
                "grpc_sequential": await sequential(lambda: grpc_gateway.push(PUSH_BATCH), seconds),
                "grpc_concurrent": await concurrent(lambda: grpc_gateway.push(PUSH_BATCH), seconds, concurrency),
            },
        }
        push = results["gateway.push(100)"]
        push["grpc_sequential"]["deliveries_per_s"] = push["grpc_sequential"]["calls_per_s"] * 100  # type: ignore[index]
        push["grpc_concurrent"]["deliveries_per_s"] = push["grpc_concurrent"]["calls_per_s"] * 100  # type: ignore[index]
        await grpc_filter.close()
        await grpc_gateway.close()
        if same_process:
            await local.stop(0)
        return results
    finally:
        if process is not None:
            process.terminate()
            process.join(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--same-process", action="store_true", help="server on the client's event loop")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.seconds, args.concurrency, args.same_process)), indent=2))


if __name__ == "__main__":
    main()
