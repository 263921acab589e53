"""GatewayClient in-process and over gRPC: push returns gone ids, frames arrive intact."""

from __future__ import annotations

import pytest

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
        ("gw-test/a", group_frame), ("gw-test/b", group_frame), ("gw-test/c", group_frame),
        ("gw-test/zzz", group_frame), ("gw-test/a", solo_frame), ("gw-test/a", b""),
    ])
    assert gone == ["gw-test/c", "gw-test/zzz"]
    assert connections["gw-test/a"].frames == [group_frame, solo_frame, b""]
    assert connections["gw-test/b"].frames == [group_frame]
    assert await client.push([]) == []


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
        assert await client.push([(f"gw-test/{i}", frame) for i in range(100)]) == []
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
        assert await client.push([("gw-test/a", b"hi")]) == []
        await directory.update({"gw-test": f"127.0.0.1:{server.port}"})  # unchanged: kept
        assert directory.get("gw-test") is client
        await directory.update({})
        assert directory.get("gw-test") is None
    finally:
        await directory.close()
        await server.stop(0)
