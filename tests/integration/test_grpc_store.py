"""StoreClient in-process and over gRPC: accept, dedup, and a failing log's error."""

from __future__ import annotations

import pytest

from services.backends.embedded.filelog import FileLog
from services.backends.embedded.memcache import MemoryCache
from services.backends.messagedb.sqlite import SQLiteMessageDB
from services.common.config import StoreConfig
from services.common.errors import BackendUnavailable
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message
from services.store import StoreService
from services.store.api import serve
from services.store.client import GrpcStoreClient

from .grpc_harness import CLIENT_KINDS, client_of

CONFIG = StoreConfig(partitions=2)


class FlakyLog:
    """The FileLog, except produce fails while `down` (the broker is unreachable)."""

    def __init__(self, inner: FileLog) -> None:
        self._inner = inner
        self.down = False

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    async def produce(self, topic: str, value: bytes, **kwargs):
        if self.down:
            raise BackendUnavailable("log unreachable: broker 1 down", broker=1, retriable=True)
        return await self._inner.produce(topic, value, **kwargs)


def message(client_msg_id: str, msg_id: int, body: object = "hi") -> Message:
    return Message(msg_id=msg_id, client_msg_id=client_msg_id, conversation_id=ConversationId("c2c:alice:bob"),
                   sender_id=UserId("alice"), sender_device=DeviceId("phone"), content_type="text", body=body,
                   created_at=1_700_000_000_000)


@pytest.fixture
async def backends(tmp_path):
    log = FileLog(tmp_path / "log", fsync=False)
    cache = MemoryCache()
    db = SQLiteMessageDB(tmp_path / "messages.db")
    for backend in (log, cache, db):
        await backend.start()
    await db.migrate()
    yield FlakyLog(log), cache, db
    for backend in (log, cache, db):
        await backend.close()


@pytest.fixture(params=CLIENT_KINDS)
async def store(request, backends):
    log, cache, db = backends
    service = StoreService(log=log, db=db, cache=cache, config=CONFIG)
    await service.start(consume=False)
    async with client_of(request.param, service, serve=serve,
                         grpc_client=GrpcStoreClient) as client:
        yield client, log


async def test_accept_logs_the_message_once(store) -> None:
    client, log = store
    body = {"text": "héllo ✓", "attachments": [{"size": 3}]}
    first = await client.accept(message("c-1", 101, body))
    assert (first.msg_id, first.duplicate) == (101, False)
    # A resend gets a new msg_id from the gateway; dedup answers with the first one.
    again = await client.accept(message("c-1", 202, body))
    assert (again.msg_id, again.duplicate) == (101, True)

    end = await log.end_offsets(CONFIG.topic)
    assert sum(end.values()) == 1


async def test_unavailable_log_comes_back_as_backend_unavailable(store) -> None:
    client, log = store
    log.down = True
    with pytest.raises(BackendUnavailable) as caught:
        await client.accept(message("c-2", 303))
    assert str(caught.value) == "log unreachable: broker 1 down"
    assert caught.value.details == {"broker": 1, "retriable": True}
    log.down = False
    assert (await client.accept(message("c-2", 303))).duplicate is False  # nothing was remembered
