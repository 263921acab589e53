"""message-sync over gRPC: a thin binding of SyncService (sync.proto)."""

from __future__ import annotations

import grpc.aio

from services.common.grpc_errors import rpc_errors
from services.common.grpcio import GrpcServer, start_server
from services.common.proto import common_pb2
from services.common.proto import sync_pb2 as pb
from services.common.proto import sync_pb2_grpc as pb_grpc
from services.common.proto_model import cursor_from_pb, event_to_pb, event_wire_to_pb, message_wire_to_pb

from .service import SyncService

__all__ = ["SyncApi", "register", "serve"]

_EMPTY = pb.Empty()


class SyncApi(pb_grpc.SyncServicer):
    def __init__(self, service: SyncService) -> None:
        self._service = service

    @rpc_errors
    async def Sync(self, request: pb.SyncRequest, context: grpc.aio.ServicerContext) -> pb.SyncResponse:
        cursors = {c.conversation_id: cursor_from_pb(c.cursor) for c in request.cursors}
        result = await self._service.sync(request.user_id, request.device_id, cursors=cursors or None,
                                          limit=request.limit or None)
        return pb.SyncResponse(conversations=[
            pb.ConversationSync(
                conversation_id=conversation_id,
                messages=[message_wire_to_pb(m) for m in news["messages"]],
                events=[event_wire_to_pb(e) for e in news["events"]],
                has_more=news["has_more"], max_seq=news["max_seq"],
                after_cursor=common_pb2.Cursor(**news["after"]), next_cursor=common_pb2.Cursor(**news["next"]),
            )
            for conversation_id, news in result.items()
        ])

    @rpc_errors
    async def NoteAcks(self, request: pb.NoteAcksRequest, context: grpc.aio.ServicerContext) -> pb.Empty:
        note_ack = self._service.note_ack  # buffers; the service writes cursors in batches
        for ack in request.acks:
            note_ack(ack.user_id, ack.device_id, ack.conversation_id, seq=ack.seq, event_id=ack.event_id,
                     after_seq=ack.after_seq, after_event_id=ack.after_event_id)
        return _EMPTY

    @rpc_errors
    async def Recall(self, request: pb.MessageRef, context: grpc.aio.ServicerContext) -> common_pb2.ConversationEvent:
        return event_to_pb(await self._service.recall(request.user_id, request.msg_id))

    @rpc_errors
    async def Delete(self, request: pb.MessageRef, context: grpc.aio.ServicerContext) -> common_pb2.ConversationEvent:
        return event_to_pb(await self._service.delete(request.user_id, request.msg_id))

    @rpc_errors
    async def Read(self, request: pb.ReadRequest, context: grpc.aio.ServicerContext) -> common_pb2.ConversationEvent:
        return event_to_pb(await self._service.read(request.user_id, request.conversation_id, request.seq))


def register(service: SyncService):
    """A registration for services.common.grpcio.start_server."""
    return lambda server: pb_grpc.add_SyncServicer_to_server(SyncApi(service), server)


async def serve(service: SyncService, *, host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    """Serve `service` alone on host:port (0: any free port; see GrpcServer.port)."""
    return await start_server(register(service), host=host, port=port)
