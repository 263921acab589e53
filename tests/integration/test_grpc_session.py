"""SessionClient in-process and over gRPC: logins, replacement, routes, presence, errors."""

from __future__ import annotations

import pytest

from services.backends.embedded.memcache import MemoryCache
from services.common.config import SessionConfig
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.ids import DeviceId, UserId
from services.common.model import DeviceType, Session, SessionStatus
from services.session import SessionService
from services.session.api import serve
from services.session.client import GrpcSessionClient, SessionClient

from .grpc_harness import CLIENT_KINDS, client_of

ALICE, BOB, CAROL = UserId("alice"), UserId("bob"), UserId("carol")
PHONE, LAPTOP = DeviceId("phone"), DeviceId("laptop")


async def _client(kind: str, second_login: str):
    cache = MemoryCache()
    await cache.start()
    service = SessionService(cache, SessionConfig(second_login=second_login), route_cache_ttl_s=0.0)
    return cache, client_of(kind, service, serve=serve,
                            grpc_client=GrpcSessionClient)


@pytest.fixture(params=CLIENT_KINDS)
async def client(request):
    cache, context = await _client(request.param, "replace")
    async with context as client:
        yield client
    await cache.close()


@pytest.fixture(params=CLIENT_KINDS)
async def rejecting_client(request):
    cache, context = await _client(request.param, "reject")
    async with context as client:
        yield client
    await cache.close()


async def test_both_clients_implement_the_protocol(client) -> None:
    assert isinstance(client, SessionClient)


async def test_login_returns_the_session(client) -> None:
    result = await client.login(ALICE, PHONE, device_type="mobile", connection_id="gw1/a", gateway_id="gw1")
    session = result.session
    assert isinstance(session, Session) and result.replaced is None
    assert (session.user_id, session.device_id, session.device_type, session.connection_id, session.gateway_id,
            session.status) == (ALICE, PHONE, DeviceType.MOBILE, "gw1/a", "gw1", SessionStatus.ONLINE)
    assert session.last_active > 0


async def test_second_login_replaces_the_old_connection(client) -> None:
    await client.login(ALICE, PHONE, device_type=DeviceType.MOBILE, connection_id="gw1/a", gateway_id="gw1")
    again = await client.login(ALICE, PHONE, device_type=DeviceType.MOBILE, connection_id="gw2/b", gateway_id="gw2")
    assert again.replaced is not None
    assert (again.replaced.connection_id, again.replaced.gateway_id) == ("gw1/a", "gw1")
    assert again.session.connection_id == "gw2/b"
    with pytest.raises(Conflict):  # the replaced connection may not heartbeat any more
        await client.heartbeat(ALICE, PHONE, connection_id="gw1/a")
    assert await client.logout(ALICE, PHONE, connection_id="gw1/a") is False  # stale logout
    same = await client.login(ALICE, PHONE, device_type="mobile", connection_id="gw2/b", gateway_id="gw2")
    assert same.replaced is None  # same connection: idempotent refresh


async def test_reject_policy_raises_conflict_with_the_holder(rejecting_client) -> None:
    await rejecting_client.login(ALICE, PHONE, device_type="web", connection_id="gw1/a", gateway_id="gw1")
    with pytest.raises(Conflict) as caught:
        await rejecting_client.login(ALICE, PHONE, device_type="web", connection_id="gw2/b", gateway_id="gw2")
    assert caught.value.details == {"connection_id": "gw1/a", "gateway_id": "gw1"}


async def test_routes_and_presence_keep_request_order(client) -> None:
    await client.login(ALICE, PHONE, device_type="mobile", connection_id="gw1/a", gateway_id="gw1")
    await client.login(ALICE, LAPTOP, device_type="desktop", connection_id="gw2/b", gateway_id="gw2")
    await client.login(BOB, PHONE, device_type="pad", connection_id="gw1/c", gateway_id="gw1")
    await client.set_status(BOB, PHONE, status=SessionStatus.AWAY, connection_id="gw1/c")

    routes = await client.routes([CAROL, BOB, ALICE])
    assert list(routes) == [CAROL, BOB, ALICE]
    assert routes[CAROL] == []
    assert {s.connection_id for s in routes[ALICE]} == {"gw1/a", "gw2/b"}
    assert [(s.device_type, s.status) for s in routes[BOB]] == [(DeviceType.PAD, SessionStatus.AWAY)]

    presence = await client.presence([ALICE, BOB, CAROL])
    assert presence == {ALICE: SessionStatus.ONLINE, BOB: SessionStatus.AWAY, CAROL: SessionStatus.OFFLINE}


async def test_heartbeat_set_status_and_logout(client) -> None:
    await client.login(ALICE, PHONE, device_type="mobile", connection_id="gw1/a", gateway_id="gw1")
    away = await client.set_status(ALICE, PHONE, status="away")  # no connection_id: any owner
    assert away.status is SessionStatus.AWAY
    back = await client.heartbeat(ALICE, PHONE, connection_id="gw1/a")
    assert back.status is SessionStatus.ONLINE
    assert await client.logout(ALICE, PHONE, connection_id="gw1/a") is True
    assert await client.routes([ALICE]) == {ALICE: []}


async def test_errors_keep_type_message_and_details(client) -> None:
    with pytest.raises(NotFound) as missing:
        await client.heartbeat(ALICE, PHONE, connection_id="gw1/a")
    assert str(missing.value) == "no session for device 'phone' of 'alice'"
    assert missing.value.details == {"user_id": "alice", "device_id": "phone"}

    with pytest.raises(InvalidInput) as bad_type:
        await client.login(ALICE, PHONE, device_type="toaster", connection_id="gw1/a", gateway_id="gw1")
    assert str(bad_type.value) == "unknown device_type 'toaster'"
    assert bad_type.value.details == {"field": "device_type"}

    with pytest.raises(InvalidInput) as bad_id:
        await client.login(UserId("a:b"), PHONE, device_type="web", connection_id="gw1/a", gateway_id="gw1")
    assert bad_id.value.details == {"field": "user_id"}

    await client.login(ALICE, PHONE, device_type="mobile", connection_id="gw1/a", gateway_id="gw1")
    with pytest.raises(InvalidInput, match="use logout to go offline"):
        await client.set_status(ALICE, PHONE, status=SessionStatus.OFFLINE)
