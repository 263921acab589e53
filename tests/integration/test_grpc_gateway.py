"""GatewayClient in-process and over gRPC: push returns gone ids, frames arrive intact."""

from __future__ import annotations

import pytest

from services.common.errors import InvalidInput
from services.common.proto import gateway_pb2 as pb
from services.delivery import Push
from services.gateway import InProcessGatewayClient
from services.gateway.api import serve
from services.gateway.client import GrpcGatewayClient, GrpcGatewayDirectory

from .grpc_harness import CLIENT_KINDS, client_of
from .grpc_stack import gateway_with


@pytest.fixture(params=CLIENT_KINDS)
async def env(request):
    service, connections = gateway_with("gw-test/a", "gw-test/b", "gw-test/c")
    async with client_of(request.param, service, inprocess=InProcessGatewayClient, serve=serve,
                         grpc_client=lambda target: GrpcGatewayClient(target, gateway_id="gw-test")) as client:
        yield client, connections


async def test_both_clients_name_their_gateway(env) -> None:
    client, _ = env
    assert all(callable(getattr(client, name)) for name in ("push", "close_connection"))  # GatewayClient
    assert client.gateway_id == "gw-test"


async def test_push_delivers_frames_and_returns_gone_ids(env) -> None:
    client, connections = env
    connections["gw-test/c"].close_soon(4000, "idle")
    group_frame = b'{"type":"message","seq":1,"body":"\xe2\x9c\x93"}'
    solo_frame = b'{"type":"ack","level":"delivered"}'
    gone = await client.push([
        Push("gw-test/a", "group:g", 1, group_frame), Push("gw-test/b", "group:g", 1, group_frame),
        Push("gw-test/c", "group:g", 1, group_frame), Push("gw-test/zzz", "group:g", 1, group_frame),
        Push("gw-test/a", "", 0, solo_frame), Push("gw-test/a", "", 0, b""),
    ])
    assert gone == ["gw-test/c", "gw-test/zzz"]
    assert connections["gw-test/a"].frames == [group_frame, solo_frame, b""]
    assert connections["gw-test/b"].frames == [group_frame]
    # What each frame is arrives with it, so the gateway never parses a frame to learn it.
    assert connections["gw-test/a"].carried == [("group:g", 1), ("", 0), ("", 0)]
    assert connections["gw-test/b"].carried == [("group:g", 1)]
    assert await client.push([]) == []


async def test_the_same_bytes_keep_each_push_s_own_seq(env) -> None:
    client, connections = env
    frame = b'{"type":"message"}'
    assert await client.push([Push("gw-test/a", "group:g", 5, frame), Push("gw-test/b", "group:h", 6, frame)]) == []
    assert connections["gw-test/a"].carried == [("group:g", 5)]
    assert connections["gw-test/b"].carried == [("group:h", 6)]


async def test_a_push_whose_frame_fields_differ_in_length_is_refused() -> None:
    service, connections = gateway_with("gw-test/a")
    server = await serve(service)
    client = GrpcGatewayClient(f"127.0.0.1:{server.port}", gateway_id="gw-test")
    try:
        request = pb.PushRequest(connection_ids=["gw-test/a"], frame_index=[0], frames=[b"x"],
                                 frame_conversation_ids=["group:g"], frame_seqs=[])
        with pytest.raises(InvalidInput, match="frame_seqs"):
            await client._call(client._stub.Push, request)
        assert connections["gw-test/a"].frames == []  # nothing of a refused batch is queued
    finally:
        await client.close()
        await server.stop(0)


async def test_close_connection(env) -> None:
    client, connections = env
    await client.close_connection("gw-test/b", code=4003, reason="replaced")
    await client.close_connection("gw-test/unknown", code=4003, reason="replaced")  # not an error
    assert connections["gw-test/b"].closed_with == (4003, "replaced")


async def test_a_group_frame_crosses_the_wire_once() -> None:
    service, _ = gateway_with(*(f"gw-test/{i}" for i in range(100)))
    server = await serve(service)
    client = GrpcGatewayClient(f"127.0.0.1:{server.port}", gateway_id="gw-test")
    sizes: list[int] = []
    send = client._stub.Push

    async def measuring(request, **kwargs):
        sizes.append(request.ByteSize())
        return await send(request, **kwargs)

    client._stub.Push = measuring
    try:
        frame = b"x" * 1000
        assert await client.push([Push(f"gw-test/{i}", "group:g", 1, frame) for i in range(100)]) == []
        assert len(sizes) == 1 and sizes[0] < 100 * 1000 / 4  # one copy of the frame, not 100
    finally:
        await client.close()
        await server.stop(0)


async def test_directory_keeps_one_client_per_gateway() -> None:
    service, connections = gateway_with("gw-test/a")
    server = await serve(service)
    directory = GrpcGatewayDirectory({"gw-test": f"127.0.0.1:{server.port}"})
    try:
        client = directory.get("gw-test")
        assert client is not None and directory.get("gw-test") is client
        assert directory.get("gw-other") is None
        assert await client.push([Push("gw-test/a", "", 0, b"hi")]) == []
        await directory.update({"gw-test": f"127.0.0.1:{server.port}"})  # unchanged: kept
        assert directory.get("gw-test") is client
        await directory.update({})
        assert directory.get("gw-test") is None
    finally:
        await directory.close()
        await server.stop(0)
