"""The batched channel between the monolith's core and its gateway workers, on a real
socketpair: calls, notifications, errors as Flare errors, refusals, limits, closing."""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct

import pytest

from services.common.channel import Channel, ChannelClosed, Remote
from services.common.errors import BackendUnavailable, InvalidInput, RateLimited


class Service:
    def __init__(self) -> None:
        self.noted: list[tuple] = []

    async def double(self, x: int, *, plus: int = 0) -> int:
        await asyncio.sleep(0)
        return 2 * x + plus

    def note(self, *args) -> None:
        self.noted.append(args)

    async def limited(self) -> None:
        raise RateLimited("slow down", retry_after=1.5)

    async def staged(self, n: int, told) -> str:
        """Progress then result, or progress then an error (n < 0)."""
        for i in range(abs(n)):
            told(("step", i))
            await asyncio.sleep(0)
        if n < 0:
            raise RateLimited("after progress", retry_after=0.5)
        return "done"

    def secret(self) -> str:  # pragma: no cover - must never be reachable
        return "leaked"


async def _pair(**limits):
    a, b = socket.socketpair()
    ra, wa = await asyncio.open_unix_connection(sock=a)
    rb, wb = await asyncio.open_unix_connection(sock=b)
    service = Service()
    server = Channel(rb, wb, name="server", targets={"svc": (service, frozenset({"double", "note", "limited", "staged"}))})
    client = Channel(ra, wa, name="client", **limits)
    server.start()
    client.start()
    return client, server, service


async def test_calls_in_one_tick_travel_together_and_come_back_in_order():
    client, server, service = await _pair()
    remote = Remote(client, "svc", notify=frozenset({"note"}))
    results = await asyncio.gather(*(remote.double(i, plus=1) for i in range(500)))
    assert results == [2 * i + 1 for i in range(500)]
    remote.note("a", 1)
    remote.note("b", 2)
    for _ in range(50):
        if len(service.noted) == 2:
            break
        await asyncio.sleep(0.01)
    assert service.noted == [("a", 1), ("b", 2)]
    await client.close()
    await server.close()


async def test_errors_cross_as_the_same_flare_error_and_unlisted_methods_are_refused():
    client, server, _ = await _pair()
    with pytest.raises(RateLimited) as caught:
        await client.call("svc", "limited")
    assert caught.value.details == {"retry_after": 1.5}
    with pytest.raises(InvalidInput, match="svc.secret is not callable"):
        await client.call("svc", "secret")
    with pytest.raises(InvalidInput):
        await client.call("nobody", "double", (1,))
    await client.close()
    await server.close()


async def test_progress_arrives_in_order_before_the_result_or_the_error():
    client, server, _ = await _pair()
    seen: list = []
    result = await client.call("svc", "staged", (3,), progress=lambda value: seen.append(value))
    assert (result, seen) == ("done", [("step", 0), ("step", 1), ("step", 2)])
    seen.clear()
    with pytest.raises(RateLimited):
        await client.call("svc", "staged", (-2,), progress=seen.append)
    assert seen == [("step", 0), ("step", 1)]
    # A callback that raises is logged; the call still gets its result.
    assert await client.call("svc", "staged", (1,), progress=lambda value: 1 / 0) == "done"
    # Concurrent calls keep their progress apart.
    logs: dict[int, list] = {n: [] for n in (1, 2, 3)}
    await asyncio.gather(*(client.call("svc", "staged", (n,), progress=logs[n].append) for n in logs))
    assert {n: len(v) for n, v in logs.items()} == {1: 1, 2: 2, 3: 3}
    await client.close()
    await server.close()


async def test_calls_beyond_the_in_flight_limit_fail_fast():
    client, server, _ = await _pair(max_in_flight=3)
    calls = [asyncio.ensure_future(client.call("svc", "double", (i,))) for i in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(BackendUnavailable, match="in flight"):
        await client.call("svc", "double", (9,))
    assert await asyncio.gather(*calls) == [0, 2, 4]
    await client.close()
    await server.close()


async def test_a_peer_that_goes_away_fails_pending_calls_with_channel_closed():
    client, server, _ = await _pair()

    async def never(*_):
        await asyncio.Event().wait()

    server.expose("slow", type("Slow", (), {"wait": never})(), {"wait"})
    pending = asyncio.ensure_future(client.call("slow", "wait"))
    await asyncio.sleep(0.05)
    await server.close()
    with pytest.raises(ChannelClosed):
        await asyncio.wait_for(pending, 5)
    with pytest.raises(ChannelClosed):
        await client.call("svc", "double", (1,))
    await client.close()


def _batch(*records) -> bytes:
    body = pickle.dumps(list(records), protocol=pickle.HIGHEST_PROTOCOL)
    return struct.pack(">I", len(body)) + body


async def _raw_peer():
    """A channel whose other end is a bare socket the test writes bytes into."""
    a, b = socket.socketpair()
    service = Service()
    reader, writer = await asyncio.open_unix_connection(sock=b)
    channel = Channel(reader, writer, name="server", targets={"svc": (service, frozenset({"note"}))},
                      max_batch_bytes=1024)
    closed = asyncio.Event()
    channel.on_close = closed.set
    channel.start()
    a.setblocking(False)
    return a, channel, service, closed


async def _until(predicate, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_batches_are_cut_from_the_stream_however_the_bytes_arrive():
    raw, channel, service, _ = await _raw_peer()
    loop = asyncio.get_running_loop()
    note = lambda i: ("n", 0, "svc", "note", (i,), {})  # noqa: E731
    # Two batches in one write, then one batch a byte at a time, then one split mid-length.
    await loop.sock_sendall(raw, _batch(note(1), note(2)) + _batch(note(3)))
    for byte in _batch(note(4), note(5)):
        await loop.sock_sendall(raw, bytes([byte]))
        await asyncio.sleep(0)
    tail = _batch(note(6)) + _batch(note(7))
    await loop.sock_sendall(raw, tail[:2])
    await asyncio.sleep(0.01)
    await loop.sock_sendall(raw, tail[2:])
    await _until(lambda: len(service.noted) == 7)
    assert service.noted == [(i,) for i in range(1, 8)]
    assert not channel.closed
    raw.close()
    await channel.close()


@pytest.mark.parametrize("bad", [
    struct.pack(">I", 4096) + b"x" * 10,  # a batch over max_batch_bytes (1 KiB here)
    struct.pack(">I", 5) + b"\x00\x01not",  # a body that is not a pickle
])
async def test_a_broken_or_oversized_batch_closes_the_channel_and_fails_its_calls(bad):
    raw, channel, service, closed = await _raw_peer()
    pending = asyncio.ensure_future(channel.call("svc", "anything"))  # the peer never answers
    await asyncio.sleep(0.01)
    await asyncio.get_running_loop().sock_sendall(raw, _batch(("n", 0, "svc", "note", ("before",), {})) + bad)
    await asyncio.wait_for(closed.wait(), 5)
    assert service.noted == [("before",)]  # what came before the bad batch was served
    with pytest.raises(ChannelClosed):
        await asyncio.wait_for(pending, 5)
    with pytest.raises(ChannelClosed):
        await channel.call("svc", "note", ("after",))
    raw.close()
    await channel.close()
