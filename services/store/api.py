"""message-store over gRPC: a thin binding of StoreService accept and reserve (store.proto)."""

from __future__ import annotations

import grpc.aio

from services.common.grpc_batch import batch_method
from services.common.grpc_errors import rpc_errors
from services.common.grpcio import GrpcServer, start_server
from services.common.proto import common_pb2
from services.common.proto import store_pb2 as pb
from services.common.proto import store_pb2_grpc as pb_grpc
from services.common.proto_model import message_from_pb

from .service import StoreService

__all__ = ["StoreApi", "register", "serve"]


class StoreApi(pb_grpc.StoreServicer):
    def __init__(self, service: StoreService) -> None:
        self._service = service

    @rpc_errors
    async def Accept(self, request: common_pb2.Message, context: grpc.aio.ServicerContext) -> pb.AcceptResponse:
        return await self._accept(request)

    @rpc_errors
    async def Reserve(self, request: common_pb2.Message, context: grpc.aio.ServicerContext) -> pb.ReserveResponse:
        return await self._reserve(request)

    AcceptBatch = batch_method("_accept", pb.AcceptResult, pb.AcceptBatchResponse)

    ReserveBatch = batch_method("_reserve", pb.ReserveResult, pb.ReserveBatchResponse)

    async def _accept(self, request: common_pb2.Message) -> pb.AcceptResponse:
        result = await self._service.accept(message_from_pb(request))
        return pb.AcceptResponse(msg_id=result.msg_id, duplicate=result.duplicate)

    async def _reserve(self, request: common_pb2.Message) -> pb.ReserveResponse:
        result = await self._service.reserve(message_from_pb(request))
        return pb.ReserveResponse(msg_id=result.msg_id, duplicate=result.duplicate, stored=result.stored)


def register(service: StoreService):
    """A registration for services.common.grpcio.start_server."""
    return lambda server: pb_grpc.add_StoreServicer_to_server(StoreApi(service), server)


async def serve(service: StoreService, *, host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    """Serve `service` alone on host:port (0: any free port; see GrpcServer.port)."""
    return await start_server(register(service), host=host, port=port)
