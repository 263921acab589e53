"""One client fixture, two implementations: the in-process client (the service object
itself, which satisfies its Protocol), or the gRPC client talking to the service's real
grpc.aio server on 127.0.0.1:0.

Each test module parametrizes its client fixture over CLIENT_KINDS and runs the same
behavioural checks through both, so the gRPC edge is held to the in-process semantics.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from services.common.grpcio import GrpcServer

CLIENT_KINDS = ["inprocess", "grpc"]


@contextlib.asynccontextmanager
async def client_of(
    kind: str,
    service: Any,
    *,
    inprocess: Callable[[Any], Any] = lambda service: service,
    serve: Callable[[Any], Awaitable[GrpcServer]],
    grpc_client: Callable[[str], Any],
) -> AsyncIterator[Any]:
    if kind == "inprocess":
        yield inprocess(service)
        return
    server = await serve(service)
    client = grpc_client(f"127.0.0.1:{server.port}")
    try:
        yield client
    finally:
        await client.close()
        await server.stop(0)


async def settle(client: Any) -> None:
    """Send what a gRPC client buffers (sync's note_ack); nothing to do in-process."""
    flush = getattr(client, "flush", None)
    if flush is not None:
        await flush()
