"""The gateway's one end-of-tick write pass (services/gateway/connection.py, TickFlusher), over
real loopback WebSockets: frames pushed to several connections in one tick all arrive, in
order, from a single scheduled callback; a connection whose flush raises is reported and the
others are still written, and it is written again on its next push."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from services.common.ids import DeviceId, UserId
from services.common.model import DeviceType
from services.gateway.connection import ClientConnection, TickFlusher
from services.gateway.links import WebsocketsLink

N = 4


async def _clients(script) -> list[list[dict]]:
    """N connections sharing one TickFlusher; `script(conns, flusher)` runs on the server side
    once all are open. Returns what each client received, in order."""
    flusher = TickFlusher()
    conns: list[ClientConnection] = []
    ready, done = asyncio.Event(), asyncio.Event()

    async def handler(ws) -> None:
        conn = ClientConnection(WebsocketsLink(ws), user_id=UserId(f"u{len(conns)}"), device_id=DeviceId("phone"),
                                device_type=DeviceType.MOBILE, connection_id=f"gw/u{len(conns)}", max_queue=100,
                                flusher=flusher)
        conn.start()
        conns.append(conn)
        if len(conns) == N:
            ready.set()
        await done.wait()
        await conn.stop()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        clients = [await connect(f"ws://127.0.0.1:{port}") for _ in range(N)]
        await asyncio.wait_for(ready.wait(), 5)
        await script(conns, flusher)
        got: list[list[dict]] = []
        for client in clients:
            frames: list[dict] = []
            while True:
                try:
                    frames.append(json.loads(await asyncio.wait_for(client.recv(), 0.3)))
                except asyncio.TimeoutError:
                    break
            got.append(frames)
        done.set()
        for client in clients:
            await client.close()
    return got


async def test_pushes_to_many_connections_in_one_tick_leave_in_one_callback():
    scheduled: list[int] = []

    async def script(conns, flusher):
        loop = asyncio.get_running_loop()
        original = loop.call_soon

        def counting(callback, *args, **kwargs):
            scheduled.append(1)
            return original(callback, *args, **kwargs)

        loop.call_soon = counting
        try:
            for i in range(3):
                for conn in conns:
                    assert conn.push(json.dumps({"n": i, "to": conn.connection_id}).encode())
        finally:
            loop.call_soon = original
        await asyncio.sleep(0.05)

    got = await _clients(script)
    assert len(scheduled) == 1, f"{len(scheduled)} loop callbacks for one tick of pushes to {N} connections"
    for frames in got:
        assert [f["n"] for f in frames] == [0, 1, 2], frames
        assert len({f["to"] for f in frames}) == 1, frames  # each client got its own frames only
    assert {frames[0]["to"] for frames in got} == {f"gw/u{i}" for i in range(N)}


async def test_a_connection_whose_flush_fails_does_not_stall_the_others():
    reported: list[dict] = []

    async def script(conns, flusher):
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: reported.append(context))
        broken = conns[1]
        real = ClientConnection._flush

        def failing(self):
            if self is broken and not reported:
                self._flush_scheduled = False
                raise RuntimeError("transport went away mid-write")
            real(self)

        ClientConnection._flush = failing
        try:
            for conn in conns:
                conn.push(b'{"n":1}')
            await asyncio.sleep(0.05)
            assert len(reported) == 1 and "gw/u1" in reported[0]["message"], reported
            broken.push(b'{"n":2}')  # the next push writes both: nothing was lost from its queue
            await asyncio.sleep(0.05)
        finally:
            ClientConnection._flush = real
            loop.set_exception_handler(None)

    got = await _clients(script)
    assert sorted([f["n"] for f in frames] for frames in got) == [[1], [1], [1], [1, 2]]
