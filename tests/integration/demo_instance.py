"""A filter instance as its own process: FilterService + ConfigAgent + a tiny HTTP check API.

A test harness (tests/integration/cp_harness.py starts it), not part of the product.

    python -m tests.integration.demo_instance --instance filter-1 --controlplane 127.0.0.1:8702 \
        --token T --state-dir D [--port 0] [--max-words N]

HTTP: `GET /check?text=…` -> {"action": …, "body": …, "version": n}; `GET /config` -> the
versions it runs. `--max-words` makes the instance refuse (NACK) larger word lists — a
stand-in for an instance that cannot take a document (an older build, a memory budget),
which is what the NACK path exists for. Prints one ready line with its address.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from controlplane.agent import ConfigAgent
from services.common import codec
from services.common.errors import InvalidInput
from services.common.model import Message
from services.filter.service import FilterService


def _response(status: int, body: object) -> bytes:
    payload = codec.dumps(body)
    reason = {200: "OK", 404: "Not Found"}.get(status, "Error")
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            f"Connection: close\r\n\r\n").encode() + payload


async def serve(args: argparse.Namespace) -> None:
    service = FilterService()
    counter = 0

    async def apply_filter_rules(document: dict) -> None:
        words = document.get("sensitive_words", [])
        if args.max_words and len(words) > args.max_words:
            raise InvalidInput(f"sensitive_words: {len(words)} words exceed this instance's limit of {args.max_words}")
        await service.apply_config("filter-rules", document)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal counter
        try:
            request_line = (await reader.readline()).decode(errors="replace").split()
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # headers are not needed
            url = urlsplit(request_line[1] if len(request_line) > 1 else "/")
            current = agent.current.get("filter-rules")
            version = current.version if current else 0
            if url.path == "/check":
                counter += 1
                text = parse_qs(url.query).get("text", [""])[0]
                verdict = await service.check(Message(msg_id=counter, client_msg_id=str(counter),
                                                      conversation_id="c2c:a:b", sender_id="a", sender_device="d",
                                                      content_type="text", body=text, created_at=0))
                writer.write(_response(200, {"action": verdict.action, "body": verdict.body, "version": version}))
            elif url.path == "/config":
                writer.write(_response(200, {k: d.version for k, d in agent.current.items()}))
            else:
                writer.write(_response(404, {"error": "not found"}))
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, args.host, args.port)
    port = server.sockets[0].getsockname()[1]
    address = f"{args.host}:{port}"
    agent = ConfigAgent("filter", args.instance, address, {"filter-rules": apply_filter_rules}, args.state_dir,
                        args.controlplane, token=args.token)
    await agent.start()  # applies the known-good cache before the control plane answers
    print(f"instance {args.instance} listening on {address}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await agent.stop()
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.integration.demo_instance")
    parser.add_argument("--instance", required=True)
    parser.add_argument("--controlplane", required=True, help="host:port of the control plane")
    parser.add_argument("--token")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-words", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
