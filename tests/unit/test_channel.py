"""The batched channel between the monolith's core and its gateway workers, on a real
socketpair: calls, notifications, errors as Flare errors, refusals, limits, closing."""

from __future__ import annotations

import asyncio
import socket

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

    def secret(self) -> str:  # pragma: no cover - must never be reachable
        return "leaked"


async def _pair(**limits):
    a, b = socket.socketpair()
    ra, wa = await asyncio.open_unix_connection(sock=a)
    rb, wb = await asyncio.open_unix_connection(sock=b)
    service = Service()
    server = Channel(rb, wb, name="server", targets={"svc": (service, frozenset({"double", "note", "limited"}))})
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
