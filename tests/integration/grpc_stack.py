"""A real router + sync stack on the embedded backends, for the gRPC client tests.

Gateways are recorders: the tests look at what the router pushed to which connection;
`gateway_with` builds a real GatewayService whose connections are such recorders.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from services.backends.embedded.filelog import FileLog
from services.backends.embedded.memcache import MemoryCache
from services.backends.messagedb.sqlite import SQLiteMessageDB
from services.common.config import GatewayConfig, RouterConfig, SessionConfig, StoreConfig, SyncConfig
from services.common.ids import MessageIdGenerator
from services.delivery import Delivery, Push
from services.filter import FilterService
from services.gateway import GatewayService
from services.router import RouterService
from services.session import SessionService
from services.store import StoreService
from services.sync import SyncService

FILTER_RULES = {
    "sensitive_words": ["darn", {"word": "forbidden", "action": "block"}],
    "action": "mask",
    "spam_rules": [{"type": "frequency", "limit": 5, "window": 60}],
}


@dataclass
class RecordingGateway:
    gateway_id: str
    pushed: list[tuple[str, bytes]] = field(default_factory=list)  # (connection_id, frame)
    pushes: list[Push] = field(default_factory=list)  # the whole records, as delivery sent them

    async def push(self, pushes: Sequence[Push]) -> list[str]:
        self.pushes.extend(pushes)
        self.pushed.extend((p.connection_id, p.frame) for p in pushes)
        return []

    async def close_connection(self, connection_id: str, *, code: int, reason: str) -> None:
        pass


class RecordingGateways:
    def __init__(self) -> None:
        self.gateways: dict[str, RecordingGateway] = {}

    def get(self, gateway_id: str) -> RecordingGateway:
        return self.gateways.setdefault(gateway_id, RecordingGateway(gateway_id))


@dataclass
class Stack:
    db: SQLiteMessageDB
    cache: MemoryCache
    log: FileLog
    session: SessionService
    store: StoreService
    router: RouterService
    sync: SyncService
    gateways: RecordingGateways
    delivery: Delivery


@contextlib.asynccontextmanager
async def embedded_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    log = FileLog(tmp_path / "log", fsync=False)
    cache = MemoryCache()
    db = SQLiteMessageDB(tmp_path / "messages.db")
    for backend in (log, cache, db):
        await backend.start()
    await db.migrate()
    session = SessionService(cache, SessionConfig(), route_cache_ttl_s=0.0)
    store = StoreService(log=log, db=db, cache=cache, config=StoreConfig(partitions=2))
    gateways = RecordingGateways()
    delivery = Delivery(session=session, gateways=gateways, db=db, log=log, config=RouterConfig())
    router = RouterService(filter=FilterService(FILTER_RULES, clock=lambda: 1_000.0), store=store, delivery=delivery)
    sync = SyncService(db=db, cache=cache, fanout=delivery.fanout, membership=delivery.membership, config=SyncConfig(),
                       flush_interval_s=0.05)
    await store.start(consume=False)
    await router.start()
    await sync.start()
    try:
        yield Stack(db, cache, log, session, store, router, sync, gateways, delivery)
    finally:
        await sync.stop()
        for backend in (log, cache, db):
            await backend.close()


class FakeConnection:
    """Stands in for a ClientConnection: records frames, can be closed."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.carried: list[tuple[str, int]] = []  # what each frame is, as the push said
        self.closed_with: tuple[int, str] | None = None

    def push(self, frame: bytes, conversation_id: str = "", seq: int = 0) -> bool:
        if self.closed_with is not None:
            return False
        self.frames.append(frame)
        self.carried.append((conversation_id, seq))
        return True

    def close_soon(self, code: int, reason: str, *, error_frame: bytes | None = None) -> None:
        self.closed_with = (code, reason)


def gateway_with(*connection_ids: str) -> tuple[GatewayService, dict[str, FakeConnection]]:
    service = GatewayService(config=GatewayConfig(port=0), gateway_id="gw-test", token_secret=b"secret",
                             router=None, sync=None, session=None, ids=MessageIdGenerator(1))  # type: ignore[arg-type]
    connections = {c: FakeConnection() for c in connection_ids}
    service._connections.update(connections)  # type: ignore[arg-type]
    return service, connections
