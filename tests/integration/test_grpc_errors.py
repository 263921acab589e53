"""The gRPC edge: every Flare error crosses it as itself; a dead or stuck server is
BackendUnavailable quickly, never a hang."""

from __future__ import annotations

import asyncio
import socket
import time

import grpc
import grpc.aio
import pytest

from services.common import errors as E
from services.common.errors import BackendError, BackendUnavailable, FlareError
from services.common.grpc_errors import CODE_KEY, error_from_rpc, status_for
from services.common.grpcio import start_server
from services.common.ids import ConversationId, DeviceId, UserId
from services.common.model import Message
from services.common.proto.filter_pb2_grpc import FilterStub
from services.common.proto_model import message_to_pb
from services.filter.api import register, serve
from services.filter.client import GrpcFilterClient
from services.filter.service import FilterService
from services.session.client import GrpcSessionClient

MESSAGE = Message(msg_id=1, client_msg_id="c1", conversation_id=ConversationId("c2c:a:b"), sender_id=UserId("a"),
                  sender_device=DeviceId("d"), content_type="text", body="hi", created_at=1)


class ScriptedFilter:
    """A FilterService stand-in whose check raises whatever the test sets, or hangs."""

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.hang = asyncio.Event()
        self.hanging = False

    async def check(self, message: Message):
        if self.hanging:
            await self.hang.wait()
        assert self.error is not None
        raise self.error

    async def apply_config(self, kind: str, document: dict) -> int:
        return 0


@pytest.fixture
async def scripted():
    service = ScriptedFilter()
    server = await serve(service)  # type: ignore[arg-type]
    client = GrpcFilterClient(f"127.0.0.1:{server.port}", timeout_s=0.5)
    yield service, client
    await client.close()
    await server.stop(0)


ERRORS = [
    (E.InvalidInput("body is not JSON", field="body"), grpc.StatusCode.INVALID_ARGUMENT),
    (E.NotFound("no session for device 'd'", user_id="a", device_id="d"), grpc.StatusCode.NOT_FOUND),
    (E.Conflict("replaced by a newer login", connection_id="gw1/x", gateway_id="gw1"), grpc.StatusCode.ABORTED),
    (E.Forbidden("only the sender can recall a message"), grpc.StatusCode.PERMISSION_DENIED),
    (E.Unauthorized("token expired"), grpc.StatusCode.UNAUTHENTICATED),
    (E.RateLimited("more than 5 messages in 60s", retry_after=12.5), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (E.Rejected("contains a sensitive word", rule="sensitive_words"), grpc.StatusCode.FAILED_PRECONDITION),
    (E.TooLarge("body is 70000 bytes; the limit is 65536", limit=65536), grpc.StatusCode.OUT_OF_RANGE),
    (E.BackendUnavailable("log unreachable", broker=1), grpc.StatusCode.UNAVAILABLE),
    (E.BackendError("disk full"), grpc.StatusCode.INTERNAL),
    (E.CompactedError("revision 5 compacted", compact_revision=9), grpc.StatusCode.OUT_OF_RANGE),
    (E.FlareError("something odd — ü ✓", nested={"a": [1, "ü"]}), grpc.StatusCode.INTERNAL),
    (E.InvalidInput(""), grpc.StatusCode.INVALID_ARGUMENT),
]


@pytest.mark.parametrize("error,status", ERRORS, ids=[type(e).__name__ for e, _ in ERRORS])
async def test_every_flare_error_comes_back_as_itself(scripted, error: FlareError, status) -> None:
    """Through the client, which calls CheckBatch: the item's error, not the call's."""
    service, client = scripted
    service.error = error
    with pytest.raises(FlareError) as caught:
        await client.check(MESSAGE)
    assert type(caught.value) is type(error)
    assert (caught.value.message, str(caught.value), caught.value.details) == (error.message, str(error), error.details)
    assert caught.value.__cause__ is None  # the server answered: not an unreachable instance to fail over
    if isinstance(error, E.CompactedError):
        assert caught.value.compact_revision == 9  # type: ignore[attr-defined]


@pytest.mark.parametrize("error,status", ERRORS, ids=[type(e).__name__ for e, _ in ERRORS])
async def test_every_flare_error_comes_back_as_itself_from_a_unary_call(scripted, error: FlareError, status) -> None:
    """The unary Check the server keeps for older clients: a status with Flare metadata."""
    service, client = scripted
    assert status_for(error) == status
    service.error = error
    async with grpc.aio.insecure_channel(client.target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await FilterStub(channel).Check(message_to_pb(MESSAGE), timeout=2.0)
    assert failed.value.code() == status
    rebuilt = error_from_rpc(failed.value, "filter")
    assert type(rebuilt) is type(error)
    assert (rebuilt.message, str(rebuilt), rebuilt.details) == (error.message, str(error), error.details)
    if isinstance(error, E.CompactedError):
        assert rebuilt.compact_revision == 9  # type: ignore[attr-defined]


async def test_a_bug_on_the_server_is_internal_and_does_not_leak(scripted) -> None:
    service, client = scripted
    service.error = KeyError("secret-internal-key")
    with pytest.raises(FlareError) as caught:
        await client.check(MESSAGE)
    assert type(caught.value) is FlareError
    assert "secret" not in str(caught.value) and "Check" in str(caught.value)


async def test_a_stuck_server_hits_the_deadline(scripted) -> None:
    service, client = scripted
    service.hanging = True
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="DEADLINE_EXCEEDED"):
        await client.check(MESSAGE)
    assert time.monotonic() - started < 2.0


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_no_server_is_backend_unavailable_promptly() -> None:
    client = GrpcSessionClient(f"127.0.0.1:{_unused_port()}", timeout_s=5.0)
    started = time.monotonic()
    try:
        with pytest.raises(BackendUnavailable, match="session at 127.0.0.1"):
            await client.presence([UserId("a")])
    finally:
        await client.close()
    assert time.monotonic() - started < 2.0  # refused at once, not after the 5 s deadline


async def test_a_server_that_dies_is_backend_unavailable_promptly() -> None:
    server = await serve(FilterService())
    client = GrpcFilterClient(f"127.0.0.1:{server.port}", timeout_s=5.0)
    try:
        assert (await client.check(MESSAGE)).action == "allow"
        await server.stop(0)
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            await client.check(MESSAGE)
        assert time.monotonic() - started < 2.0
    finally:
        await client.close()


async def test_a_taken_port_is_a_flare_error() -> None:
    first = await start_server(register(FilterService()))
    try:
        with pytest.raises(BackendError, match="cannot listen"):
            await start_server(register(FilterService()), port=first.port)
    finally:
        await first.stop(0)


def _rpc_error(code: grpc.StatusCode, details: str, trailing=()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details)


@pytest.mark.parametrize("code,kind", [
    (grpc.StatusCode.UNAVAILABLE, E.BackendUnavailable),
    (grpc.StatusCode.DEADLINE_EXCEEDED, E.BackendUnavailable),
    (grpc.StatusCode.INVALID_ARGUMENT, E.InvalidInput),
    (grpc.StatusCode.ALREADY_EXISTS, E.Conflict),
    (grpc.StatusCode.ABORTED, E.Conflict),
    (grpc.StatusCode.PERMISSION_DENIED, E.Forbidden),
    (grpc.StatusCode.UNIMPLEMENTED, E.BackendError),
])
def test_statuses_without_flare_metadata_map_by_code(code, kind) -> None:
    error = error_from_rpc(_rpc_error(code, "from a proxy"), "router at x:1")
    assert type(error) is kind
    assert "from a proxy" in str(error)


def test_grpc_size_limit_is_too_large_and_unknown_codes_fall_back() -> None:
    size = error_from_rpc(_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                     "Received message larger than max (70 vs. 64)"), "gateway")
    assert type(size) is E.TooLarge
    newer = error_from_rpc(_rpc_error(grpc.StatusCode.NOT_FOUND, "gone", [(CODE_KEY, "from_the_future")]), "x")
    assert type(newer) is E.NotFound


def test_a_client_built_before_the_loop_runs_opens_its_channel_on_that_loop() -> None:
    client = GrpcSessionClient(f"127.0.0.1:{_unused_port()}")  # no running loop yet

    async def use() -> None:
        try:
            with pytest.raises(BackendUnavailable):  # not "attached to a different loop"
                await client.presence([UserId("a")])
        finally:
            await client.close()

    asyncio.run(use())
