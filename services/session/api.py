"""The session service over gRPC: a thin binding of SessionService (session.proto)."""

from __future__ import annotations

import grpc.aio

from services.common.grpc_errors import rpc_errors
from services.common.grpcio import GrpcServer, start_server
from services.common.ids import DeviceId, UserId
from services.common.proto import common_pb2
from services.common.proto import session_pb2 as pb
from services.common.proto import session_pb2_grpc as pb_grpc
from services.common.proto_model import session_to_pb, status_to_pb

from .service import SessionService

__all__ = ["SessionApi", "register", "serve"]


class SessionApi(pb_grpc.SessionServicer):
    def __init__(self, service: SessionService) -> None:
        self._service = service

    @rpc_errors
    async def Login(self, request: pb.LoginRequest, context: grpc.aio.ServicerContext) -> pb.LoginResponse:
        result = await self._service.login(
            UserId(request.user_id), DeviceId(request.device_id), device_type=request.device_type,
            connection_id=request.connection_id, gateway_id=request.gateway_id,
        )
        reply = pb.LoginResponse(session=session_to_pb(result.session))
        if result.replaced is not None:
            reply.replaced.CopyFrom(session_to_pb(result.replaced))
        return reply

    @rpc_errors
    async def Heartbeat(self, request: pb.HeartbeatRequest, context: grpc.aio.ServicerContext) -> common_pb2.Session:
        session = await self._service.heartbeat(
            UserId(request.user_id), DeviceId(request.device_id), connection_id=request.connection_id)
        return session_to_pb(session)

    @rpc_errors
    async def SetStatus(self, request: pb.SetStatusRequest, context: grpc.aio.ServicerContext) -> common_pb2.Session:
        session = await self._service.set_status(
            UserId(request.user_id), DeviceId(request.device_id), status=request.status,
            connection_id=request.connection_id if request.HasField("connection_id") else None,
        )
        return session_to_pb(session)

    @rpc_errors
    async def Logout(self, request: pb.LogoutRequest, context: grpc.aio.ServicerContext) -> pb.LogoutResponse:
        ended = await self._service.logout(
            UserId(request.user_id), DeviceId(request.device_id), connection_id=request.connection_id)
        return pb.LogoutResponse(ended=ended)

    @rpc_errors
    async def Routes(self, request: pb.UsersRequest, context: grpc.aio.ServicerContext) -> pb.RoutesResponse:
        routes = await self._service.routes([UserId(u) for u in request.user_ids])
        return pb.RoutesResponse(routes=[
            pb.UserRoutes(user_id=user, sessions=[session_to_pb(s) for s in sessions])
            for user, sessions in routes.items()
        ])

    @rpc_errors
    async def Presence(self, request: pb.UsersRequest, context: grpc.aio.ServicerContext) -> pb.PresenceResponse:
        presence = await self._service.presence([UserId(u) for u in request.user_ids])
        return pb.PresenceResponse(presence=[
            pb.UserPresence(user_id=user, status=status_to_pb(status)) for user, status in presence.items()
        ])


def register(service: SessionService):
    """A registration for services.common.grpcio.start_server."""
    return lambda server: pb_grpc.add_SessionServicer_to_server(SessionApi(service), server)


async def serve(service: SessionService, *, host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    """Serve `service` alone on host:port (0: any free port; see GrpcServer.port)."""
    return await start_server(register(service), host=host, port=port)
