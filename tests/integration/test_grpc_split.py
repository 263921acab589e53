"""Split mode in one test: every hop of send -> persist -> deliver crosses gRPC.

gateway-side RouterClient -> router -> (filter, store over gRPC); the store consumer
hands the persisted batch to delivery (the router's side), which looks up routes over
gRPC and pushes to the gateway over gRPC.
"""

from __future__ import annotations

import asyncio

from .grpc_stack import FILTER_RULES, gateway_with
from services.backends.embedded.filelog import FileLog
from services.backends.embedded.memcache import MemoryCache
from services.backends.messagedb.sqlite import SQLiteMessageDB
from services.common import codec
from services.common.config import RouterConfig, SessionConfig, StoreConfig
from services.common.grpcio import start_server
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message
from services.delivery import Delivery
from services.filter import FilterService
from services.filter import api as filter_api
from services.filter.client import GrpcFilterClient
from services.gateway import api as gateway_api
from services.gateway.client import GrpcGatewayDirectory
from services.router import RouterService
from services.router import api as router_api
from services.router.client import GrpcRouterClient
from services.session import SessionService
from services.session import api as session_api
from services.session.client import GrpcSessionClient
from services.store import StoreService
from services.store import api as store_api
from services.store.client import GrpcStoreClient


async def test_send_and_deliver_with_every_hop_over_grpc(tmp_path) -> None:
    log, cache, db = FileLog(tmp_path / "log", fsync=False), MemoryCache(), SQLiteMessageDB(tmp_path / "m.db")
    for backend in (log, cache, db):
        await backend.start()
    await db.migrate()
    servers: list = []
    clients: list = []
    store: StoreService | None = None
    try:
        session = SessionService(cache, SessionConfig(), route_cache_ttl_s=0.0)
        gateway, connections = gateway_with("gw-test/bob")
        core = await start_server(filter_api.register(FilterService(FILTER_RULES)), session_api.register(session),
                                  gateway_api.register(gateway))
        servers.append(core)
        filter_client, session_client = GrpcFilterClient(core.address), GrpcSessionClient(core.address)
        gateways = GrpcGatewayDirectory({"gw-test": core.address})
        clients += [filter_client, session_client, gateways]
        # The store hands persisted batches to delivery in-process here (the router's side
        # of the Deliver RPC); routes and pushes cross gRPC.
        delivery = Delivery(session=session_client, gateways=gateways, db=db, log=log, config=RouterConfig())
        store = StoreService(log=log, db=db, cache=cache, config=StoreConfig(partitions=2), delivery=delivery)
        servers.append(await start_server(store_api.register(store)))
        store_client = GrpcStoreClient(servers[-1].address)
        clients.append(store_client)
        router = RouterService(filter=filter_client, store=store_client, delivery=delivery)
        await router.start()
        await store.start()
        servers.append(await router_api.serve(router))
        router_client = GrpcRouterClient(servers[-1].address)
        clients.append(router_client)

        await session_client.login(UserId("bob"), DeviceId("phone"), device_type="mobile",
                                   connection_id="gw-test/bob", gateway_id="gw-test")
        sent = Message(msg_id=777, client_msg_id="c-777", conversation_id=ConversationId("c2c:alice:bob"),
                       sender_id=UserId("alice"), sender_device=DeviceId("phone"), content_type="text",
                       body={"text": "darn, hello"}, created_at=1_700_000_000_000)
        result = await router_client.send(sent)
        assert (result.msg_id, result.duplicate, result.body) == (777, False, {"text": "****, hello"})

        inbox = connections["gw-test/bob"].frames
        for _ in range(500):
            if inbox:
                break
            await asyncio.sleep(0.01)
        frame = codec.loads(inbox[0])
        assert (frame["type"], frame["msg_id"], frame["seq"], frame["body"]) == ("message", "777", 1, {"text": "****, hello"})
    finally:
        for client in clients:
            await client.close()
        if store is not None:
            await store.stop()
        for server in servers:
            await server.stop(0)
        for backend in (log, cache, db):
            await backend.close()
