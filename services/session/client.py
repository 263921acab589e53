"""How other services reach the session service: one interface, in-process or (later) gRPC."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from services.common.ids import DeviceId, UserId
from services.common.model import DeviceType, Session, SessionStatus

from .service import LoginResult, SessionService

__all__ = ["SessionClient", "InProcessSessionClient"]


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


class InProcessSessionClient:
    def __init__(self, service: SessionService) -> None:
        self._service = service

    async def login(
        self,
        user_id: UserId,
        device_id: DeviceId,
        *,
        device_type: DeviceType | str,
        connection_id: str,
        gateway_id: str,
    ) -> LoginResult:
        return await self._service.login(
            user_id, device_id, device_type=device_type, connection_id=connection_id, gateway_id=gateway_id
        )

    async def heartbeat(self, user_id: UserId, device_id: DeviceId, *, connection_id: str) -> Session:
        return await self._service.heartbeat(user_id, device_id, connection_id=connection_id)

    async def set_status(
        self,
        user_id: UserId,
        device_id: DeviceId,
        *,
        status: SessionStatus | str,
        connection_id: str | None = None,
    ) -> Session:
        return await self._service.set_status(user_id, device_id, status=status, connection_id=connection_id)

    async def logout(self, user_id: UserId, device_id: DeviceId, *, connection_id: str) -> bool:
        return await self._service.logout(user_id, device_id, connection_id=connection_id)

    async def routes(self, user_ids: Sequence[UserId]) -> dict[UserId, list[Session]]:
        return await self._service.routes(user_ids)

    async def presence(self, user_ids: Sequence[UserId]) -> dict[UserId, SessionStatus]:
        return await self._service.presence(user_ids)
