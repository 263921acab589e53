"""How other services reach the session service: one interface, in-process or gRPC.

In-process the SessionService itself is the client; GrpcSessionClient is the same over session.proto.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from services.common.grpcio import GrpcClientBase
from services.common.ids import DeviceId, UserId
from services.common.model import DeviceType, Session, SessionStatus
from services.common.proto import session_pb2 as pb
from services.common.proto import session_pb2_grpc as pb_grpc
from services.common.proto_model import session_from_pb, status_from_pb

from .types import LoginResult

__all__ = ["SessionClient", "GrpcSessionClient"]


@runtime_checkable
class SessionClient(Protocol):
    async def login(
        self,
        user_id: UserId,
        device_id: DeviceId,
        *,
        device_type: DeviceType | str,
        connection_id: str,
        gateway_id: str,
    ) -> LoginResult:
        """Open the session of one device (one session per user+device).

        If the device already has a live session on another connection, the
        `second_login` policy decides: "replace" returns the old session in
        `LoginResult.replaced` (the gateway closes that connection with code 4003);
        "reject" raises Conflict (details: connection_id, gateway_id of the holder).
        Logging in again on the same connection is an idempotent refresh.
        InvalidInput for bad ids or an unknown device type.
        """

    async def heartbeat(self, user_id: UserId, device_id: DeviceId, *, connection_id: str) -> Session:
        """Mark the device active now; an AWAY device becomes ONLINE again.

        NotFound if the session expired or was logged out (log in again); Conflict if
        a newer login replaced this connection (close it).
        """

    async def set_status(
        self,
        user_id: UserId,
        device_id: DeviceId,
        *,
        status: SessionStatus | str,
        connection_id: str | None = None,
    ) -> Session:
        """Switch between ONLINE and AWAY; NotFound / Conflict as for heartbeat."""

    async def logout(self, user_id: UserId, device_id: DeviceId, *, connection_id: str) -> bool:
        """End the session if `connection_id` still owns it; False for a stale logout."""

    async def routes(self, user_ids: Sequence[UserId]) -> dict[UserId, list[Session]]:
        """Every requested user -> its live devices (ONLINE or AWAY), [] when offline.

        The delivery path's lookup: batched, and served from a short in-process cache
        that this service invalidates on every login, logout, status change and expiry.
        """

    async def presence(self, user_ids: Sequence[UserId]) -> dict[UserId, SessionStatus]:
        """ONLINE if any device is online, AWAY if every live device is away, else OFFLINE."""


def _enum_text(value: object) -> str:
    # Send the raw text, not a proto enum: the service parses it and words the
    # InvalidInput for an unknown value exactly as it does in-process.
    return value.value if isinstance(value, (DeviceType, SessionStatus)) else str(value)


class GrpcSessionClient(GrpcClientBase):
    """SessionClient over gRPC (session.proto); `channel` is a grpc.aio.Channel or a target."""

    service_name = "session"
    stub_class = pb_grpc.SessionStub

    async def login(
        self,
        user_id: UserId,
        device_id: DeviceId,
        *,
        device_type: DeviceType | str,
        connection_id: str,
        gateway_id: str,
    ) -> LoginResult:
        request = pb.LoginRequest(user_id=user_id, device_id=device_id, device_type=_enum_text(device_type),
                                  connection_id=connection_id, gateway_id=gateway_id)
        reply: pb.LoginResponse = await self._call(self._stub.Login, request)
        replaced = session_from_pb(reply.replaced) if reply.HasField("replaced") else None
        return LoginResult(session_from_pb(reply.session), replaced)

    async def heartbeat(self, user_id: UserId, device_id: DeviceId, *, connection_id: str) -> Session:
        request = pb.HeartbeatRequest(user_id=user_id, device_id=device_id, connection_id=connection_id)
        return session_from_pb(await self._call(self._stub.Heartbeat, request))

    async def set_status(
        self,
        user_id: UserId,
        device_id: DeviceId,
        *,
        status: SessionStatus | str,
        connection_id: str | None = None,
    ) -> Session:
        request = pb.SetStatusRequest(user_id=user_id, device_id=device_id, status=_enum_text(status))
        if connection_id is not None:
            request.connection_id = connection_id
        return session_from_pb(await self._call(self._stub.SetStatus, request))

    async def logout(self, user_id: UserId, device_id: DeviceId, *, connection_id: str) -> bool:
        request = pb.LogoutRequest(user_id=user_id, device_id=device_id, connection_id=connection_id)
        reply: pb.LogoutResponse = await self._call(self._stub.Logout, request)
        return reply.ended

    async def routes(self, user_ids: Sequence[UserId]) -> dict[UserId, list[Session]]:
        reply: pb.RoutesResponse = await self._call(self._stub.Routes, pb.UsersRequest(user_ids=user_ids))
        return {UserId(entry.user_id): [session_from_pb(s) for s in entry.sessions] for entry in reply.routes}

    async def presence(self, user_ids: Sequence[UserId]) -> dict[UserId, SessionStatus]:
        reply: pb.PresenceResponse = await self._call(self._stub.Presence, pb.UsersRequest(user_ids=user_ids))
        return {UserId(entry.user_id): status_from_pb(entry.status) for entry in reply.presence}
