"""How an agent reaches the daemon: in-process (monolith) or over the gRPC stream.

Both give `connect(hello)` -> an async context manager yielding a Link with `pushes()` and
`report()`; the agent does not know which one it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Protocol

from services.common.errors import BackendUnavailable, FlareError

from services.common.documents import StoredDocument
from .messages import Hello, Report

if TYPE_CHECKING:
    from .sessions import Hub

__all__ = ["Link", "Connector", "LocalConnector", "GrpcConnector"]


class Link(Protocol):
    def pushes(self) -> AsyncIterator[StoredDocument]:
        """Documents as the daemon pushes them; ends (or raises BackendUnavailable) when the link drops."""

    async def report(self, report: Report) -> None: ...

    async def summary(self, summary: dict) -> None:
        """What the instance measured (services/common/metrics_summary.py)."""


class Connector(Protocol):
    def connect(self, hello: Hello) -> contextlib.AbstractAsyncContextManager[Link]: ...


class _LocalLink:
    def __init__(self, hub: Hub, session) -> None:
        self._hub = hub
        self._session = session

    async def pushes(self) -> AsyncIterator[StoredDocument]:
        while (doc := await self._session.outbox.get()) is not None:
            yield doc

    async def report(self, report: Report) -> None:
        await self._hub.report(self._session, report)

    async def summary(self, summary: dict) -> None:
        self._hub.summary(self._session, summary)


class LocalConnector:
    """Subscribe to the daemon's hub in the same process (the monolith): no gRPC, same Link."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    @contextlib.asynccontextmanager
    async def connect(self, hello: Hello) -> AsyncIterator[Link]:
        session = await self._hub.attach(hello)
        try:
            yield _LocalLink(self._hub, session)
        finally:
            await self._hub.detach(session)


class _GrpcLink:
    def __init__(self, call) -> None:
        self._call = call
        self._writing = asyncio.Lock()  # reports and summaries come from two tasks; gRPC takes one write at a time

    async def pushes(self) -> AsyncIterator[StoredDocument]:
        from .client import document_from_pb, translate_rpc_error

        import grpc.aio

        while True:
            try:
                message = await self._call.read()
            except grpc.aio.AioRpcError as exc:
                raise translate_rpc_error(exc, "control plane stream") from exc
            if message is grpc.aio.EOF:
                return
            yield document_from_pb(message.document)

    async def report(self, report: Report) -> None:
        from services.common.proto import controlplane_pb2 as pb

        import grpc.aio

        await self._write(pb.AgentMessage(report=pb.Report(
            kind=report.kind, version=report.version, digest=report.digest, ok=report.ok, error=report.error)))

    async def summary(self, summary: dict) -> None:
        from services.common import codec
        from services.common.proto import controlplane_pb2 as pb

        await self._write(pb.AgentMessage(summary=pb.Summary(json=codec.dumps(summary))))

    async def _write(self, message) -> None:
        import grpc.aio

        try:
            async with self._writing:
                await self._call.write(message)
        except (grpc.aio.AioRpcError, grpc.aio.UsageError) as exc:
            raise BackendUnavailable(f"control plane stream closed: {exc}") from exc


class GrpcConnector:
    def __init__(self, address: str, *, token: str | None = None) -> None:
        self.address = address
        self._token = token

    @contextlib.asynccontextmanager
    async def connect(self, hello: Hello) -> AsyncIterator[Link]:
        import grpc.aio

        from services.common.proto import controlplane_pb2 as pb
        from services.common.proto import controlplane_pb2_grpc as pb_grpc

        from .client import CHANNEL_OPTIONS, translate_rpc_error

        channel = grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS)
        metadata = (("authorization", f"Bearer {self._token}"),) if self._token else ()
        call = pb_grpc.ControlPlaneStub(channel).Subscribe(metadata=metadata)
        try:
            try:
                await call.write(pb.AgentMessage(hello=pb.Hello(
                    service=hello.service, instance_id=hello.instance_id, address=hello.address,
                    kinds=list(hello.kinds), started_at=hello.started_at, software_version=hello.software_version,
                    self_registered=hello.self_registered,
                    applied={k: pb.Applied(version=v, digest=d) for k, (v, d) in hello.applied.items()})))
            except grpc.aio.AioRpcError as exc:
                raise translate_rpc_error(exc, "control plane stream") from exc
            except FlareError:
                raise
            yield _GrpcLink(call)
        finally:
            call.cancel()
            await channel.close()
