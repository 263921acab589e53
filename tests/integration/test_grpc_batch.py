"""The batch RPCs of the send path over a real grpc.aio server on loopback (StoreApi, the
store client): concurrent calls share a batch, each caller gets its own answer or its own
Flare error (the same the unary RPC gives), a failed call fails every item of it."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest
from prometheus_client import REGISTRY

from services.common import errors as E
from services.common.errors import BackendUnavailable, FlareError
from services.common.grpc_batch import MAX_BATCH_ITEMS
from services.common.grpc_errors import error_from_rpc
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message
from services.common.proto.store_pb2_grpc import StoreStub
from services.common.proto_model import message_to_pb
from services.store.api import serve
from services.store.client import GrpcStoreClient
from services.store.types import AcceptResult, Reservation
from services.wiring.discovery import instance_unreachable

# What the scripted store raises for a message whose body names it.
ERRORS: dict[str, FlareError] = {
    "invalid": E.InvalidInput("body is not JSON", field="body"),
    "rejected": E.Rejected("contains a sensitive word", rule="sensitive_words"),
    "limited": E.RateLimited("more than 5 messages in 60s", retry_after=12.5),
    "log_down": E.BackendUnavailable("log unreachable: broker 1 down", broker=1, retriable=True),
    "compacted": E.CompactedError("revision 5 compacted", compact_revision=9),
    "odd": E.FlareError("something odd — ü ✓", nested={"a": [1, "ü"]}),
}


class ScriptedStore:
    """A StoreService stand-in: answers by the message's body, holds calls while `gate` is
    clear, and counts how many it runs at once."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.hanging = False
        self.running = 0
        self.most_running = 0
        self.seen: list[int] = []

    async def accept(self, message: Message) -> AcceptResult:
        self.seen.append(message.msg_id)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await asyncio.sleep(0)  # let items run side by side, if the server runs them so
            await self.gate.wait()
            if self.hanging:
                await asyncio.Event().wait()
        finally:
            self.running -= 1
        if message.body in ERRORS:
            raise ERRORS[message.body]
        if message.body == "bug":
            raise KeyError("secret-internal-key")
        return AcceptResult(message.msg_id * 10, message.body == "dup")

    async def reserve(self, message: Message) -> Reservation:
        return Reservation(message.msg_id + 1, True, message.body == "stored")


def message(msg_id: int, body: object = "hi") -> Message:
    return Message(msg_id=msg_id, client_msg_id=f"c{msg_id}", conversation_id=ConversationId("c2c:a:b"),
                   sender_id=UserId("a"), sender_device=DeviceId("d"), content_type="text", body=body, created_at=1)


@pytest.fixture
async def scripted():
    store = ScriptedStore()
    server = await serve(store)  # type: ignore[arg-type]
    client = GrpcStoreClient(f"127.0.0.1:{server.port}", timeout_s=2.0)
    yield store, client, server
    await client.close()
    await server.stop(0)


def _batches(rpc: str) -> tuple[float, float]:
    labels = {"rpc": rpc}
    return (REGISTRY.get_sample_value("flare_grpc_batch_size_count", labels) or 0.0,
            REGISTRY.get_sample_value("flare_grpc_batch_size_sum", labels) or 0.0)


async def _held(store: ScriptedStore, first, then):
    """Start `first` alone, and `then` while it is in flight on the server; release both."""
    store.gate.clear()
    lone = asyncio.ensure_future(first)
    while store.running < 1:  # the first call has reached the server
        await asyncio.sleep(0.001)
    rest = [asyncio.ensure_future(call) for call in then]
    await asyncio.sleep(0.01)
    store.gate.set()
    return await asyncio.gather(lone, *rest, return_exceptions=True)


async def test_light_load_is_one_call_per_message(scripted) -> None:
    store, client, _ = scripted
    count, total = _batches("store.AcceptBatch")
    for i in range(1, 4):
        assert await client.accept(message(i)) == AcceptResult(i * 10, False)
    assert client._accept.batches == 3
    assert _batches("store.AcceptBatch") == (count + 3, total + 3)


async def test_concurrent_calls_share_one_batch_run_concurrently_and_answer_in_order(scripted) -> None:
    store, client, _ = scripted
    results = await _held(store, client.accept(message(1)), [client.accept(message(i, "dup")) for i in range(2, 52)])
    assert results == [AcceptResult(10, False)] + [AcceptResult(i * 10, True) for i in range(2, 52)]
    assert client._accept.batches == 2  # the lone first call, then all fifty together
    assert store.seen == list(range(1, 52))
    assert store.most_running == 50  # the server ran the batch's items at once, not one by one


async def test_each_failing_item_gets_its_own_error_the_same_as_the_unary_call(scripted) -> None:
    store, client, server = scripted
    bodies = ["hi", *ERRORS, "dup", "bug"]
    results = await _held(store, client.accept(message(100)),
                          [client.accept(message(200 + i, body)) for i, body in enumerate(bodies)])
    assert results[0] == AcceptResult(1000, False)
    assert results[1] == AcceptResult(2000, False)
    assert results[-2] == AcceptResult((200 + len(bodies) - 2) * 10, True)
    assert client._accept.batches == 2

    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = StoreStub(channel)
        for (body, error), got in zip(ERRORS.items(), results[2:-2]):
            assert type(got) is type(error), body
            assert (got.message, got.details) == (error.message, error.details)
            assert not instance_unreachable(got)  # the server answered: no failover
            with pytest.raises(grpc.aio.AioRpcError) as unary:
                await stub.Accept(message_to_pb(message(1, body)), timeout=2.0)
            from_unary = error_from_rpc(unary.value, "store")
            assert (type(from_unary), from_unary.message, from_unary.details) == (type(got), got.message, got.details)
            if isinstance(error, E.CompactedError):
                assert got.compact_revision == 9  # type: ignore[attr-defined]
    bug = results[-1]
    assert type(bug) is FlareError and "secret" not in str(bug) and "AcceptBatch" in str(bug)


async def test_a_stopped_server_fails_every_item_as_unreachable(scripted) -> None:
    store, client, server = scripted
    assert await client.accept(message(1)) == AcceptResult(10, False)
    await server.stop(0)
    results = await asyncio.gather(*(client.accept(message(i)) for i in range(2, 8)), return_exceptions=True)
    assert all(type(r) is BackendUnavailable for r in results), results
    assert all(instance_unreachable(r) for r in results)  # so a pool fails each over to another instance
    assert len({id(r) for r in results}) == len(results)  # each caller its own exception


async def test_a_deadline_fails_every_item_of_the_batch(scripted) -> None:
    store, _, server = scripted
    store.hanging = True
    async with GrpcStoreClient(f"127.0.0.1:{server.port}", timeout_s=0.3) as client:
        results = await _held(store, client.accept(message(1)), [client.accept(message(i)) for i in range(2, 6)])
        assert client._accept.batches == 2
    assert all(type(r) is BackendUnavailable and "DEADLINE_EXCEEDED" in str(r) for r in results), results
    assert not any(instance_unreachable(r) for r in results)  # maybe done: not failed over


async def test_batches_stay_within_max_items(scripted) -> None:
    store, client, _ = scripted
    count, total = _batches("store.AcceptBatch")
    many = MAX_BATCH_ITEMS * 2 + 50
    results = await _held(store, client.accept(message(1)), [client.accept(message(i)) for i in range(2, many + 2)])
    assert results == [AcceptResult(i * 10, False) for i in range(1, many + 2)]
    new_count, new_total = _batches("store.AcceptBatch")
    assert new_total - total == many + 1
    assert new_count - count == client._accept.batches == 4  # 1, then 256, 256 and 50
    le_256 = REGISTRY.get_sample_value("flare_grpc_batch_size_bucket", {"rpc": "store.AcceptBatch", "le": "256.0"})
    assert le_256 == new_count


async def test_reserve_goes_through_its_own_batch_rpc(scripted) -> None:
    _, client, _ = scripted
    results = await asyncio.gather(client.reserve(message(1)), client.reserve(message(2, "stored")))
    assert results == [Reservation(2, True, False), Reservation(3, True, True)]
    assert client._reserve.batches == 2 and client._accept.batches == 0


class _Acks:
    """A RouterService stand-in for on_delivered: records the reports, fails one user's."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, str, list[int]]] = []

    async def on_delivered(self, user_id: str, conversation_id: str, seqs) -> None:
        await asyncio.sleep(0.01)
        if user_id == "mallory":
            raise E.Forbidden("not a member", conversation_id=conversation_id)
        self.reports.append((user_id, conversation_id, list(seqs)))


async def test_concurrent_delivered_reports_share_batch_calls_and_fail_alone():
    from services.router.api import serve as serve_router
    from services.router.client import GrpcRouterClient

    router = _Acks()
    server = await serve_router(router)  # type: ignore[arg-type]
    client = GrpcRouterClient(f"127.0.0.1:{server.port}", timeout_s=2.0)
    try:
        users = [f"u{i}" for i in range(40)] + ["mallory"]
        results = await asyncio.gather(*(client.on_delivered(user, "group:g", [1, 2]) for user in users),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], E.Forbidden)
        assert errors[0].details == {"conversation_id": "group:g"}
        assert sorted(r[0] for r in router.reports) == sorted(users[:-1])
        assert all(r[1:] == ("group:g", [1, 2]) for r in router.reports)
        assert client._delivered.batches < len(users)  # shared calls, not one each
    finally:
        await client.close()
        await server.stop(0)
