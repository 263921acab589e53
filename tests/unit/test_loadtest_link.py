"""The load tester's device link (flarectl/loadtest/link.py) against small real servers."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from websockets.asyncio.server import serve
from websockets.http11 import Response
from websockets.datastructures import Headers

from flarectl.loadtest.link import ConnectFailed, connect_device


async def _server(handler, **kwargs):
    server = await serve(handler, "127.0.0.1", 0, compression=None, **kwargs)
    port = server.sockets[0].getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/"


async def test_hello_then_frames_in_order_including_a_fragmented_one():
    got: list[bytes] = []

    async def handler(ws):
        await ws.send(orjson.dumps({"type": "batch", "frames": [{"type": "hello"}, {"type": "x", "n": 0}]}).decode())
        await ws.send(orjson.dumps({"type": "x", "n": 1}).decode())
        text = orjson.dumps({"type": "x", "n": 2, "pad": "p" * 5000}).decode()
        await ws.send([text[:100], text[100:3000], text[3000:]])  # one message in three frames
        async for message in ws:
            got.append(message.encode() if isinstance(message, str) else message)
            if len(got) == 3:
                await ws.close(4000, "done")

    server, url = await _server(handler)
    async with server:
        link, hello, after = await connect_device(url, timeout=5)
        assert hello == {"type": "hello"} and after == [{"type": "x", "n": 0}]
        seen: list[dict] = []
        await asyncio.sleep(0.1)  # frames before attach are kept for it
        link.attach(seen.append)
        for n in range(3):
            assert link.send(orjson.dumps({"n": n}))
        assert await asyncio.wait_for(link.closed, 5) == 4000
        assert [f["n"] for f in seen] == [1, 2] and len(seen[1]["pad"]) == 5000
        assert [orjson.loads(g)["n"] for g in got] == [0, 1, 2]
        assert not link.send(b"{}")  # closed: refused, not raised


async def test_an_error_frame_instead_of_hello_is_a_refusal_with_its_close_code():
    async def handler(ws):
        await ws.send(orjson.dumps({"type": "error", "code": "unauthorized", "message": "bad token"}).decode())
        await ws.close(4001, "unauthorized")

    server, url = await _server(handler)
    async with server:
        with pytest.raises(ConnectFailed) as caught:
            await connect_device(url, timeout=5)
    assert caught.value.auth and caught.value.code == 4001
    assert "unauthorized: bad token" in str(caught.value)


async def test_an_http_refusal_and_a_closed_port():
    def reject(connection, request):
        return Response(401, "Unauthorized", Headers(), b"no")

    server, url = await _server(lambda ws: None, process_request=reject)
    async with server:
        with pytest.raises(ConnectFailed) as caught:
            await connect_device(url, timeout=5)
    assert caught.value.auth and "401" in str(caught.value)
    with pytest.raises(ConnectFailed, match="cannot connect"):
        await connect_device(url, timeout=2)  # the server is gone


async def test_a_silent_server_times_out_without_hello():
    async def handler(ws):
        await ws.wait_closed()  # says nothing until the client gives up

    server, url = await _server(handler)
    async with server:
        with pytest.raises(ConnectFailed, match="no hello"):
            await connect_device(url, timeout=0.5)


async def test_a_failing_handler_cuts_the_link_and_keeps_the_error():
    async def handler(ws):
        await ws.send('{"type": "hello"}')
        await ws.send('{"type": "boom"}')
        await ws.wait_closed()

    server, url = await _server(handler)
    async with server:
        link, _, _ = await connect_device(url, timeout=5)

        def explode(frame: dict) -> None:
            raise RuntimeError(f"tester bug on {frame['type']}")

        link.attach(explode)
        await asyncio.wait_for(link.closed, 5)
        assert isinstance(link.error, RuntimeError) and "boom" in str(link.error)


async def test_close_soon_sends_what_is_queued_first():
    got: list[str] = []

    async def handler(ws):
        await ws.send('{"type": "hello"}')
        async for message in ws:
            got.append(message)

    server, url = await _server(handler)
    async with server:
        link, _, _ = await connect_device(url, timeout=5)
        link.attach(lambda frame: None)
        link.send(b'{"n": 1}')
        link.send(b'{"n": 2}')
        link.close_soon()
        assert await asyncio.wait_for(link.closed, 5) == 1000
    assert got == ['{"n": 1}', '{"n": 2}']
