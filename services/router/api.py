"""message-router over gRPC: a thin binding of RouterService (router.proto)."""

from __future__ import annotations

import grpc.aio

from services.common.grpc_batch import batch_method
from services.common.grpc_errors import rpc_errors
from services.common.grpcio import GrpcServer, start_server
from services.common.proto import common_pb2
from services.common.proto import router_pb2 as pb
from services.common.proto import router_pb2_grpc as pb_grpc
from services.common.proto_model import json_bytes, message_from_pb

from .service import RouterService

__all__ = ["RouterApi", "register", "serve"]

_EMPTY = pb.Empty()


class RouterApi(pb_grpc.RouterServicer):
    def __init__(self, service: RouterService) -> None:
        self._service = service

    @rpc_errors
    async def Admit(self, request: common_pb2.Message, context: grpc.aio.ServicerContext) -> pb.AdmitResponse:
        return await self._admit(request)

    @rpc_errors
    async def Send(self, request: common_pb2.Message, context: grpc.aio.ServicerContext) -> pb.SendResponse:
        return await self._send(request)

    AdmitBatch = batch_method("_admit", pb.AdmitResult, pb.AdmitBatchResponse)

    SendBatch = batch_method("_send", pb.SendResult, pb.SendBatchResponse)

    async def _admit(self, request: common_pb2.Message) -> pb.AdmitResponse:
        result = await self._service.admit(message_from_pb(request))
        return pb.AdmitResponse(msg_id=result.msg_id, duplicate=result.duplicate, stored=result.stored)

    async def _send(self, request: common_pb2.Message) -> pb.SendResponse:
        message = message_from_pb(request)
        sent_body = message.body
        result = await self._service.send(message)
        reply = pb.SendResponse(msg_id=result.msg_id, duplicate=result.duplicate)
        if result.body is not sent_body:  # masked: the caller learns what was stored
            reply.body_json = json_bytes(result.body)
        return reply

    @rpc_errors
    async def OnDelivered(self, request: pb.DeliveredRequest, context: grpc.aio.ServicerContext) -> pb.Empty:
        return await self._on_delivered(request)

    OnDeliveredBatch = batch_method("_on_delivered", pb.DeliveredResult, pb.DeliveredBatchResponse)

    async def _on_delivered(self, request: pb.DeliveredRequest) -> pb.Empty:
        await self._service.on_delivered(request.user_id, request.conversation_id, list(request.seqs))
        return _EMPTY

    @rpc_errors
    async def Deliver(self, request: pb.DeliverRequest, context: grpc.aio.ServicerContext) -> pb.Empty:
        await self._service.deliver([message_from_pb(m) for m in request.messages])
        return _EMPTY

    @rpc_errors
    async def CreateGroup(self, request: pb.CreateGroupRequest, context: grpc.aio.ServicerContext) -> pb.GroupInfoResponse:
        info = await self._service.create_group(request.creator_id, request.conversation_id, list(request.members),
                                                join_policy=request.join_policy or "invite",
                                                history=request.history or "joined")
        return _group_info_pb(info)

    @rpc_errors
    async def JoinGroup(self, request: pb.MembershipRequest, context: grpc.aio.ServicerContext) -> pb.Empty:
        await self._service.join_group(request.user_id, request.conversation_id)
        return _EMPTY

    @rpc_errors
    async def LeaveGroup(self, request: pb.MembershipRequest, context: grpc.aio.ServicerContext) -> pb.Empty:
        await self._service.leave_group(request.user_id, request.conversation_id)
        return _EMPTY


    @rpc_errors
    async def AddMembers(self, request: pb.MembersChange, context: grpc.aio.ServicerContext) -> pb.MembersResponse:
        added = await self._service.add_members(request.actor_id, request.conversation_id, list(request.user_ids))
        return pb.MembersResponse(members=added)

    @rpc_errors
    async def RemoveMembers(self, request: pb.MembersChange, context: grpc.aio.ServicerContext) -> pb.MembersResponse:
        gone = await self._service.remove_members(request.actor_id, request.conversation_id, list(request.user_ids))
        return pb.MembersResponse(members=gone)

    @rpc_errors
    async def SetRole(self, request: pb.SetRoleRequest, context: grpc.aio.ServicerContext) -> pb.Empty:
        await self._service.set_role(request.actor_id, request.conversation_id, request.user_id, request.role)
        return _EMPTY

    @rpc_errors
    async def GetGroupInfo(self, request: pb.MembershipRequest, context: grpc.aio.ServicerContext) -> pb.GroupInfoResponse:
        return _group_info_pb(await self._service.group_info(request.user_id, request.conversation_id))


def _group_info_pb(info) -> pb.GroupInfoResponse:
    return pb.GroupInfoResponse(conversation_id=info.conversation_id, owner=info.owner, join_policy=info.join_policy,
                                history=info.history,
                                members=[pb.GroupMemberRole(user_id=u, role=r) for u, r in info.members])


def register(service: RouterService):
    """A registration for services.common.grpcio.start_server."""
    return lambda server: pb_grpc.add_RouterServicer_to_server(RouterApi(service), server)


async def serve(service: RouterService, *, host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    """Serve `service` alone on host:port (0: any free port; see GrpcServer.port)."""
    return await start_server(register(service), host=host, port=port)
