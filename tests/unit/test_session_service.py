"""SessionService over the embedded MemoryCache: logins, routes, presence, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

import services.session as session_pkg
from services.backends.cache import Cache
from services.backends.embedded.memcache import MemoryCache
from services.common import codec
from services.common.config import SessionConfig
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.ids import DeviceId, UserId
from services.common.model import DeviceType, SessionStatus
from services.session import (
    SessionClient,
    SessionService,
    route_key,
)
from services.session._local import RouteCache
from services.session.service import ACTIVE_KEY

T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingCache:
    """Wraps a Cache, counting route reads; offers the batched hash read a Redis adapter would."""

    def __init__(self, inner: Cache) -> None:
        self._inner = inner
        self.hgetall_calls = 0
        self.batched_calls: list[int] = []

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    async def hgetall(self, key: str) -> dict[str, bytes]:
        self.hgetall_calls += 1
        return await self._inner.hgetall(key)

    async def hgetall_many(self, keys: list[str]) -> list[dict[str, bytes]]:
        self.batched_calls.append(len(keys))
        return [await self._inner.hgetall(key) for key in keys]


class YieldingCache:
    """Yields to the event loop before every call, as a networked cache would: lets
    concurrent read-modify-writes interleave so the per-device locking is exercised."""

    def __init__(self, inner: Cache) -> None:
        self._inner = inner

    def __getattr__(self, name: str):
        attribute = getattr(self._inner, name)
        if name == "subscribe" or not callable(attribute):
            return attribute

        async def call(*args, **kwargs):
            await asyncio.sleep(0)
            return await attribute(*args, **kwargs)

        return call


@pytest.fixture
async def cache() -> AsyncIterator[MemoryCache]:
    cache = MemoryCache.from_url("memory://")
    await cache.start()
    yield cache
    await cache.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(cache: MemoryCache, clock: FakeClock) -> SessionService:
    return SessionService(cache, SessionConfig(session_timeout_s=120), clock=clock)


async def login(service: SessionService, user: str, device: str, connection: str, *, device_type: str = "mobile", gateway: str = "gw1"):
    return await service.login(UserId(user), DeviceId(device), device_type=device_type, connection_id=connection, gateway_id=gateway)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_login_creates_a_route_redis_cli_can_read(service: SessionService, cache: MemoryCache) -> None:
    before = sample("flare_session_logins_total", device_type="desktop")
    result = await login(service, "alice", "laptop", "conn-1", device_type="desktop", gateway="gw-7")

    assert result.replaced is None
    assert result.session.status is SessionStatus.ONLINE
    assert result.session.last_active == int(T0 * 1000)
    raw = await cache.hgetall(route_key("alice"))
    assert codec.loads(raw["laptop"]) == {
        "user_id": "alice", "device_id": "laptop", "device_type": "desktop", "connection_id": "conn-1",
        "gateway_id": "gw-7", "last_active": int(T0 * 1000), "status": "online",
    }
    assert 0 < (await cache.ttl(route_key("alice")) or 0) <= service.route_ttl_s
    assert sample("flare_session_logins_total", device_type="desktop") == before + 1

    routes = await service.routes([UserId("alice"), UserId("nobody")])
    assert [(s.device_id, s.gateway_id, s.connection_id) for s in routes[UserId("alice")]] == [("laptop", "gw-7", "conn-1")]
    assert routes[UserId("nobody")] == []


async def test_one_session_per_device_many_devices_per_user(service: SessionService) -> None:
    await login(service, "alice", "phone", "c1")
    await login(service, "alice", "laptop", "c2", device_type=DeviceType.DESKTOP)
    routes = (await service.routes([UserId("alice")]))[UserId("alice")]
    assert [(s.device_id, s.device_type) for s in routes] == [("laptop", DeviceType.DESKTOP), ("phone", DeviceType.MOBILE)]


async def test_second_login_replaces_and_names_the_old_connection(service: SessionService) -> None:
    before = sample("flare_session_replaced_total")
    await login(service, "alice", "phone", "old-conn", gateway="gw1")
    await service.routes([UserId("alice")])  # warm the in-process cache: the login must invalidate it

    result = await login(service, "alice", "phone", "new-conn", gateway="gw2")

    assert result.replaced is not None
    assert (result.replaced.connection_id, result.replaced.gateway_id) == ("old-conn", "gw1")
    # The replaced connection has lost the device: what it still sends is refused, naming the
    # connection that holds it now. (Its gateway closing it with 4003 is tests/e2e/test_bad_input.py.)
    with pytest.raises(Conflict) as caught:
        await service.heartbeat(UserId("alice"), DeviceId("phone"), connection_id="old-conn")
    assert caught.value.details["connection_id"] == "new-conn"
    assert await service.logout(UserId("alice"), DeviceId("phone"), connection_id="old-conn") is False
    routes = (await service.routes([UserId("alice")]))[UserId("alice")]
    assert [(s.connection_id, s.gateway_id) for s in routes] == [("new-conn", "gw2")]
    assert sample("flare_session_replaced_total") == before + 1


async def test_second_login_rejected_by_policy(cache: MemoryCache, clock: FakeClock) -> None:
    service = SessionService(cache, SessionConfig(second_login="reject", session_timeout_s=120), clock=clock)
    await login(service, "alice", "phone", "first")
    with pytest.raises(Conflict) as caught:
        await login(service, "alice", "phone", "second")
    assert caught.value.details["connection_id"] == "first"
    assert [s.connection_id for s in (await service.routes([UserId("alice")]))[UserId("alice")]] == ["first"]

    # Logging in again on the same connection is a refresh, not a second login.
    assert (await login(service, "alice", "phone", "first")).replaced is None
    # A session idle past the timeout (not swept yet) does not hold the device hostage.
    clock.now += 121
    assert (await login(service, "alice", "phone", "second")).session.connection_id == "second"


async def test_a_stale_logout_does_not_remove_the_new_session(service: SessionService) -> None:
    await login(service, "alice", "phone", "old-conn")
    await login(service, "alice", "phone", "new-conn")

    assert await service.logout(UserId("alice"), DeviceId("phone"), connection_id="old-conn") is False
    assert [s.connection_id for s in (await service.routes([UserId("alice")]))[UserId("alice")]] == ["new-conn"]

    assert await service.logout(UserId("alice"), DeviceId("phone"), connection_id="new-conn") is True
    assert (await service.routes([UserId("alice")]))[UserId("alice")] == []
    assert await service.logout(UserId("alice"), DeviceId("phone"), connection_id="new-conn") is False


async def test_heartbeat_refreshes_last_active_and_brings_away_back(service: SessionService, clock: FakeClock, cache: MemoryCache) -> None:
    await login(service, "alice", "phone", "c1")
    away = await service.set_status(UserId("alice"), DeviceId("phone"), status=SessionStatus.AWAY)
    assert away.status is SessionStatus.AWAY
    assert (await service.presence([UserId("alice")]))[UserId("alice")] is SessionStatus.AWAY

    clock.now += 30
    session = await service.heartbeat(UserId("alice"), DeviceId("phone"), connection_id="c1")
    assert session.last_active == int((T0 + 30) * 1000)
    assert session.status is SessionStatus.ONLINE
    assert (await service.presence([UserId("alice")]))[UserId("alice")] is SessionStatus.ONLINE
    assert await cache.zrangebyscore(ACTIVE_KEY, 0, float("inf")) == [("alice:phone", float(int((T0 + 30) * 1000)))]


async def test_heartbeat_of_a_replaced_or_missing_session_fails(service: SessionService) -> None:
    with pytest.raises(NotFound):
        await service.heartbeat(UserId("alice"), DeviceId("phone"), connection_id="c1")
    await login(service, "alice", "phone", "c1")
    await login(service, "alice", "phone", "c2")
    with pytest.raises(Conflict):
        await service.heartbeat(UserId("alice"), DeviceId("phone"), connection_id="c1")
    with pytest.raises(Conflict):
        await service.set_status(UserId("alice"), DeviceId("phone"), status="away", connection_id="c1")
    # The failed heartbeat did not write the old connection back.
    assert (await service.session(UserId("alice"), DeviceId("phone"))).connection_id == "c2"  # type: ignore[union-attr]


async def test_idle_sessions_expire_with_a_fake_clock(service: SessionService, clock: FakeClock, cache: MemoryCache) -> None:
    await login(service, "alice", "phone", "c1")
    await login(service, "bob", "phone", "c2")
    await service.routes([UserId("alice"), UserId("bob")])

    clock.now += 100
    await service.heartbeat(UserId("bob"), DeviceId("phone"), connection_id="c2")
    assert await service.expire_idle() == []  # nobody is past 120 s yet

    clock.now += 30  # alice idle 130 s, bob 30 s
    expired = await service.expire_idle()
    assert [(s.user_id, s.status) for s in expired] == [("alice", SessionStatus.OFFLINE)]
    routes = await service.routes([UserId("alice"), UserId("bob")])
    assert routes[UserId("alice")] == [] and len(routes[UserId("bob")]) == 1
    assert await cache.hgetall(route_key("alice")) == {}
    assert [m for m, _ in await cache.zrangebyscore(ACTIVE_KEY, 0, float("inf"))] == ["bob:phone"]
    assert sample("flare_sessions_online") == 1

    # An explicit `now` works too (and a second pass finds nothing new).
    assert [s.user_id for s in await service.expire_idle(int((T0 + 300) * 1000))] == ["bob"]


async def test_routes_hide_idle_devices_before_the_sweeper_runs(service: SessionService, clock: FakeClock) -> None:
    await login(service, "alice", "phone", "c1")
    clock.now += 121
    assert (await service.routes([UserId("alice")]))[UserId("alice")] == []


async def test_presence_aggregates_devices(service: SessionService) -> None:
    await login(service, "on", "phone", "c1")
    await login(service, "on", "laptop", "c2")
    await service.set_status(UserId("on"), DeviceId("phone"), status="away")
    await login(service, "away", "phone", "c3")
    await login(service, "away", "pad", "c4", device_type="pad")
    await service.set_status(UserId("away"), DeviceId("phone"), status="away")
    await service.set_status(UserId("away"), DeviceId("pad"), status="away")

    presence = await service.presence([UserId("on"), UserId("away"), UserId("off")])
    assert presence == {"on": SessionStatus.ONLINE, "away": SessionStatus.AWAY, "off": SessionStatus.OFFLINE}


async def test_routes_for_many_users_take_one_batched_read_then_the_local_cache(cache: MemoryCache, clock: FakeClock) -> None:
    counting = CountingCache(cache)
    service = SessionService(counting, SessionConfig(), clock=clock)  # type: ignore[arg-type]
    users = [UserId(f"user{i}") for i in range(500)]
    for index, user in enumerate(users[:300]):
        await login(service, user, "phone", f"c{index}")

    routes = await service.routes(users)
    assert counting.batched_calls == [500] and counting.hgetall_calls == 0
    assert list(routes) == users  # every user, in the caller's order
    assert sum(len(devices) for devices in routes.values()) == 300

    await service.routes(users)
    assert counting.batched_calls == [500]  # all served in-process

    await login(service, users[0], "laptop", "c-new", device_type="desktop")  # invalidates user0 only
    routes = await service.routes(users)
    assert counting.batched_calls == [500, 1]
    assert [s.device_id for s in routes[users[0]]] == ["laptop", "phone"]


async def test_routes_fall_back_to_concurrent_reads_without_a_batched_command(service: SessionService) -> None:
    for index in range(50):
        await login(service, f"u{index}", "phone", f"c{index}")
    routes = await service.routes([UserId(f"u{index}") for index in range(60)])
    assert sum(map(len, routes.values())) == 50


async def test_a_read_that_raced_an_invalidation_is_not_cached() -> None:
    route_cache: RouteCache[str] = RouteCache(ttl_s=60, max_entries=10)
    ticket = route_cache.ticket()
    route_cache.invalidate("alice")  # a login lands while the read is in flight
    assert route_cache.store("alice", "stale", ticket) is False
    assert route_cache.store("bob", "fresh", ticket) is True
    assert route_cache.get("alice") is None and route_cache.get("bob") == "fresh"


async def test_other_instances_drop_their_cached_routes_on_a_change(cache: MemoryCache, clock: FakeClock) -> None:
    first = SessionService(cache, clock=clock, route_cache_ttl_s=3600)
    second = SessionService(cache, clock=clock, route_cache_ttl_s=3600)
    await first.start()
    await second.start()
    try:
        await login(first, "alice", "phone", "c1")
        assert len((await second.routes([UserId("alice")]))[UserId("alice")]) == 1

        await login(first, "alice", "laptop", "c2", device_type="desktop")
        for _ in range(10):  # let the pub/sub message reach the listener task
            await asyncio.sleep(0)
        assert len((await second.routes([UserId("alice")]))[UserId("alice")]) == 2
    finally:
        await first.stop()
        await second.stop()


async def test_the_background_sweeper_expires_sessions(cache: MemoryCache, clock: FakeClock) -> None:
    service = SessionService(cache, SessionConfig(session_timeout_s=120), clock=clock, sweep_interval_s=0.01)
    await login(service, "alice", "phone", "c1")
    clock.now += 121
    await service.start()
    try:
        for _ in range(200):
            if not await cache.hgetall(route_key("alice")):
                break
            await asyncio.sleep(0.01)
        assert await cache.hgetall(route_key("alice")) == {}
    finally:
        await service.stop()


@pytest.mark.parametrize(
    ("user", "device", "device_type", "field"),
    [("a:b", "phone", "mobile", "user_id"), ("alice", "", "mobile", "device_id"), ("alice", "phone", "toaster", "device_type")],
)
async def test_bad_input_is_invalid_input(service: SessionService, user: str, device: str, device_type: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        await login(service, user, device, "c1", device_type=device_type)
    assert caught.value.details["field"] == field


async def test_offline_is_not_a_status_you_set(service: SessionService) -> None:
    await login(service, "alice", "phone", "c1")
    with pytest.raises(InvalidInput):
        await service.set_status(UserId("alice"), DeviceId("phone"), status="offline")


async def test_concurrent_logins_of_one_device_leave_exactly_one_session(service: SessionService) -> None:
    results = await asyncio.gather(*(login(service, "alice", "phone", f"c{i}") for i in range(20)))
    final = (await service.routes([UserId("alice")]))[UserId("alice")]
    assert len(final) == 1
    assert final[0].connection_id == results[-1].session.connection_id
    # Each login replaced the one before it: the gateway is told to close 19 connections.
    assert sorted(r.replaced.connection_id for r in results if r.replaced) == sorted(f"c{i}" for i in range(19))


async def test_interleaved_writes_never_resurrect_a_replaced_connection(cache: MemoryCache, clock: FakeClock) -> None:
    service = SessionService(YieldingCache(cache), clock=clock)  # type: ignore[arg-type]
    alice, phone = UserId("alice"), DeviceId("phone")
    await login(service, "alice", "phone", "old")

    async def old_connection_noise() -> None:
        for _ in range(5):
            try:
                await service.heartbeat(alice, phone, connection_id="old")
            except Conflict:
                pass
        await service.logout(alice, phone, connection_id="old")

    await asyncio.gather(old_connection_noise(), login(service, "alice", "phone", "new"), old_connection_noise())
    assert (await service.session(alice, phone)).connection_id == "new"  # type: ignore[union-attr]
    assert [s.connection_id for s in (await service.routes([alice]))[alice]] == ["new"]


async def test_a_second_instance_waits_for_the_device_lease(cache: MemoryCache, clock: FakeClock) -> None:
    first = SessionService(YieldingCache(cache), clock=clock)  # type: ignore[arg-type]
    second = SessionService(YieldingCache(cache), clock=clock)  # type: ignore[arg-type]
    results = await asyncio.gather(*(login(svc, "alice", "phone", f"c{i}") for i, svc in enumerate([first, second] * 5)))
    final = await first.session(UserId("alice"), DeviceId("phone"))
    assert final is not None
    # Whatever the order, each login saw the one before it: every connection but the
    # surviving one was replaced exactly once.
    replaced = [r.replaced.connection_id for r in results if r.replaced]
    assert sorted(replaced) == sorted(f"c{i}" for i in range(10) if f"c{i}" != final.connection_id)
    assert await cache.get("session:lock:alice:phone") is None  # leases released


async def test_the_service_is_its_own_in_process_session_client(service: SessionService) -> None:
    client = service
    assert isinstance(client, SessionClient)
    result = await client.login(UserId("alice"), DeviceId("phone"), device_type="web", connection_id="c1", gateway_id="gw")
    assert (await client.heartbeat(UserId("alice"), DeviceId("phone"), connection_id="c1")).status is SessionStatus.ONLINE
    assert (await client.set_status(UserId("alice"), DeviceId("phone"), status="away")).status is SessionStatus.AWAY
    assert (await client.presence([UserId("alice")]))[UserId("alice")] is SessionStatus.AWAY
    assert (await client.routes([UserId("alice")]))[UserId("alice")][0].connection_id == result.session.connection_id
    assert await client.logout(UserId("alice"), DeviceId("phone"), connection_id="c1") is True


def test_public_names() -> None:
    assert sorted(session_pkg.__all__) == sorted(
        ["REPLACED_CLOSE_CODE", "LoginResult", "SessionClient", "SessionService", "route_key"]
    )
    for name in session_pkg.__all__:
        assert hasattr(session_pkg, name)
