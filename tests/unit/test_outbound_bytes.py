"""A connection's outbound bytes over a real loopback WebSocket: every frame taken off the
queue (plain, Replaceable, joined into a compact batch) gives back exactly what its push
added, to the connection and to the gateway's shared budget, and a Replaceable swapped
for a longer frame before it left does not skew the count."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from services.common.bounds import ByteBudget
from services.common.ids import DeviceId, UserId
from services.common.model import DeviceType
from services.gateway.connection import ClientConnection, Replaceable
from services.gateway.links import WebsocketsLink


async def _with_connection(compact: bool, budget: ByteBudget, script,
                           messages: list[dict] | None = None) -> list[dict]:
    """Run `script(conn)` on the server side of a real connection; the frames the client got
    (batches opened), and in `messages` the WebSocket messages as they arrived."""
    done = asyncio.Event()

    async def handler(ws) -> None:
        conn = ClientConnection(WebsocketsLink(ws), user_id=UserId("bob"), device_id=DeviceId("phone"), device_type=DeviceType.MOBILE,
                                connection_id="gw/bob", max_queue=100, compact=compact, budget=budget)
        await script(conn)
        await conn.stop()
        done.set()
        await ws.wait_closed()

    received: list[dict] = []
    messages = [] if messages is None else messages
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}") as client:
            await asyncio.wait_for(done.wait(), 5)
            while True:
                try:
                    raw = await asyncio.wait_for(client.recv(), 0.3)
                except asyncio.TimeoutError:
                    break
                frame = json.loads(raw)
                messages.append(frame)
                received.extend(frame["frames"] if frame.get("type") == "batch" else [frame])
    return received


async def _replace_and_send(conn: ClientConnection) -> None:
    waiting = Replaceable(b'{"n":2,"level":"received"}')
    conn.push(b'{"n":1}')
    conn.push(waiting)
    conn.push(b'{"n":3}')
    pushed = len(b'{"n":1}') + len(b'{"n":2,"level":"received"}') + len(b'{"n":3}')
    assert conn._queued_bytes == pushed
    waiting.frame = b'{"n":2,"level":"stored","and":"a longer frame than the one it replaces"}'
    conn.start()
    for _ in range(50):
        await asyncio.sleep(0.01)
        if not conn._queued_bytes:
            break
    assert waiting.taken
    assert conn._queued_bytes == 0


async def test_every_taken_frame_gives_back_its_pushed_bytes() -> None:
    for compact in (False, True):
        budget = ByteBudget("gateway_outbound", 1 << 20)
        received = await _with_connection(compact, budget, _replace_and_send)
        assert budget.used == 0, (compact, budget)
        assert [f["n"] for f in received] == [1, 2, 3]
        assert received[1]["level"] == "stored"


async def test_stop_releases_what_is_still_queued() -> None:
    budget = ByteBudget("gateway_outbound", 1 << 20)

    async def never_started(conn: ClientConnection) -> None:
        conn.push(b'{"n":1}')
        conn.push(Replaceable(b'{"n":2}'))
        assert budget.used == 14

    received = await _with_connection(True, budget, never_started)
    assert budget.used == 0
    assert received == []


async def test_frames_waiting_together_leave_as_one_batch_only_for_a_compact_client() -> None:
    async def three_waiting(conn: ClientConnection) -> None:
        for n in (1, 2, 3):
            conn.push(json.dumps({"n": n}).encode())
        conn.start()
        for _ in range(50):
            await asyncio.sleep(0.01)
            if not conn._queued_bytes:
                break

    for compact, expected in ((True, ["batch"]), (False, [None, None, None])):
        messages: list[dict] = []
        received = await _with_connection(compact, ByteBudget("gateway_outbound", 1 << 20), three_waiting, messages)
        assert [f["n"] for f in received] == [1, 2, 3]
        assert [m.get("type") for m in messages] == expected, compact
