"""The gateway's Link contract (services/gateway/links.py) on both WebSocket libraries, over
real loopback sockets with a websockets client: messages arrive whole and in order, also
when the server reads slower than the client writes (the link stops reading and resumes,
losing nothing), fragments are joined, a batch write arrives as separate messages in order,
and close() ends the connection with the code given."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from services.gateway.links import PicowsLink, WebsocketsLink

LIMIT = 64 * 1024


@contextlib.asynccontextmanager
async def _server(kind: str):
    """Yields (url, links): each accepted connection's Link is put on the queue; the
    handler keeps the connection until the link is closed."""
    links: asyncio.Queue = asyncio.Queue()
    if kind == "picows":
        from picows import ws_create_server

        def listener(request):
            return PicowsLink(request.path, max_message_bytes=LIMIT, on_connected=links.put_nowait)

        server = await ws_create_server(listener, "127.0.0.1", 0, max_frame_size=LIMIT + 1,
                                        enable_auto_pong=False, read_buffer_init_size=1024, use_aiofastnet=False)
        try:
            yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws?x=1", links
        finally:
            server.close()
    else:
        async def handler(ws):
            link = WebsocketsLink(ws)
            links.put_nowait(link)
            await ws.wait_closed()

        async with serve(handler, "127.0.0.1", 0, max_size=LIMIT, max_queue=64, compression=None) as server:
            yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/ws?x=1", links


@pytest.fixture(params=["picows", "websockets"])
def kind(request) -> str:
    return request.param


async def test_messages_arrive_in_order_even_when_the_server_reads_slowly(kind):
    async with _server(kind) as (url, links):
        async with connect(url, compression=None) as client:
            link = await asyncio.wait_for(links.get(), 5)
            assert link.path == "/ws?x=1"
            sent = [f'{{"n":{i},"pad":"{"x" * 500}"}}' for i in range(20_000)]  # 10 MB: past the socket buffers

            async def send_all() -> None:
                for message in sent:
                    await client.send(message)

            writer = asyncio.create_task(send_all())
            await asyncio.sleep(0.5)
            # Nobody reads on the server: the link stops reading the socket instead of
            # holding everything, so the client's writes back up.
            assert not writer.done()
            got = []
            async for message in link.frames():
                got.append(message)
                if len(got) == len(sent):
                    break
            await writer
            assert got == sent


async def test_fragments_are_joined_and_a_batch_write_arrives_as_separate_messages(kind):
    async with _server(kind) as (url, links):
        async with connect(url, compression=None) as client:
            link = await asyncio.wait_for(links.get(), 5)
            await client.send(iter(['{"part":', '"one",', '"end":true}']))  # three fragments
            frames = link.frames()
            assert await asyncio.wait_for(anext(frames), 5) == '{"part":"one","end":true}'
            link.write_texts([b'{"a":1}', b'{"b":2}', b'{"c":3}'])
            assert [await asyncio.wait_for(client.recv(), 5) for _ in range(3)] == ['{"a":1}', '{"b":2}', '{"c":3}']
            await link.write_texts_drained([b'{"d":4}'])
            assert await asyncio.wait_for(client.recv(), 5) == '{"d":4}'


async def test_close_ends_the_connection_with_the_code_given(kind):
    async with _server(kind) as (url, links):
        async with connect(url, compression=None) as client:
            link = await asyncio.wait_for(links.get(), 5)
            assert link.open
            await asyncio.wait_for(link.close(4008, "slow_consumer"), 10)
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(client.recv(), 5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
            assert not link.open
