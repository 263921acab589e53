"""The filter service over gRPC: a thin binding of FilterService (filter.proto)."""

from __future__ import annotations

import grpc.aio

from services.common.grpc_batch import batch_method
from services.common.grpc_errors import rpc_errors
from services.common.grpcio import GrpcServer, start_server
from services.common.proto import common_pb2
from services.common.proto import filter_pb2 as pb
from services.common.proto import filter_pb2_grpc as pb_grpc
from services.common.proto_model import json_bytes, json_value, message_from_pb

from .service import FilterService

__all__ = ["FilterApi", "register", "serve"]


class FilterApi(pb_grpc.FilterServicer):
    def __init__(self, service: FilterService) -> None:
        self._service = service

    @rpc_errors
    async def Check(self, request: common_pb2.Message, context: grpc.aio.ServicerContext) -> pb.Verdict:
        return await self._check(request)

    CheckBatch = batch_method("_check", pb.VerdictResult, pb.CheckBatchResponse)

    async def _check(self, request: common_pb2.Message) -> pb.Verdict:
        verdict = await self._service.check(message_from_pb(request))
        reply = pb.Verdict(action=verdict.action, reason=verdict.reason, rule=verdict.rule)
        if verdict.action == "mask":  # otherwise the body is the caller's own; do not echo it
            reply.body_json = json_bytes(verdict.body)
        if verdict.retry_after is not None:
            reply.retry_after = verdict.retry_after
        return reply

    @rpc_errors
    async def ApplyConfig(self, request: pb.ApplyConfigRequest, context: grpc.aio.ServicerContext) -> pb.ApplyConfigResponse:
        document = json_value(request.document_json, "document")
        generation = await self._service.apply_config(request.kind, document)  # type: ignore[arg-type]
        return pb.ApplyConfigResponse(generation=generation)


def register(service: FilterService):
    """A registration for services.common.grpcio.start_server."""
    return lambda server: pb_grpc.add_FilterServicer_to_server(FilterApi(service), server)


async def serve(service: FilterService, *, host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    """Serve `service` alone on host:port (0: any free port; see GrpcServer.port)."""
    return await start_server(register(service), host=host, port=port)
