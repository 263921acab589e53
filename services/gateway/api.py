"""The gateway's push surface over gRPC: a thin binding of GatewayService (gateway.proto).

Only the delivery seam lives here (push, close_connection; services/delivery/seam.py);
clients reach the gateway over WebSocket, not gRPC.
"""

from __future__ import annotations

import grpc.aio

from services.common.errors import InvalidInput
from services.common.grpc_errors import rpc_errors
from services.common.grpcio import GrpcServer, start_server
from services.common.proto import gateway_pb2 as pb
from services.common.proto import gateway_pb2_grpc as pb_grpc

from services.delivery.seam import Push

from .service import GatewayService

__all__ = ["GatewayApi", "register", "serve"]

_EMPTY = pb.Empty()


class GatewayApi(pb_grpc.GatewayServicer):
    def __init__(self, service: GatewayService) -> None:
        self._service = service

    @rpc_errors
    async def Push(self, request: pb.PushRequest, context: grpc.aio.ServicerContext) -> pb.PushResponse:
        frames = list(request.frames)  # once: indexing the repeated field builds a new bytes each time
        conversations, seqs = list(request.frame_conversation_ids), list(request.frame_seqs)
        indexes = request.frame_index
        if len(indexes) != len(request.connection_ids):
            raise InvalidInput("connection_ids and frame_index differ in length", field="frame_index")
        if len(conversations) != len(frames) or len(seqs) != len(frames):
            raise InvalidInput("frames, frame_conversation_ids and frame_seqs differ in length", field="frame_seqs")
        if indexes and max(indexes) >= len(frames):
            raise InvalidInput("frame_index points past frames", field="frame_index")
        pushes = [Push(c, conversations[i], seqs[i], frames[i]) for c, i in zip(request.connection_ids, indexes)]
        return pb.PushResponse(gone=self._service.push(pushes))

    @rpc_errors
    async def CloseConnection(self, request: pb.CloseRequest, context: grpc.aio.ServicerContext) -> pb.Empty:
        self._service.close_connection(request.connection_id, code=request.code, reason=request.reason)
        return _EMPTY


def register(service: GatewayService):
    """A registration for services.common.grpcio.start_server."""
    return lambda server: pb_grpc.add_GatewayServicer_to_server(GatewayApi(service), server)


async def serve(service: GatewayService, *, host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    """Serve `service`'s push surface on host:port (0: any free port; see GrpcServer.port)."""
    return await start_server(register(service), host=host, port=port)
