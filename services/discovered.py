"""Clients of the split deployment: each service Protocol over every live instance.

Each `Discovered…Client` implements the same Protocol as the in-process and gRPC clients
(services/<name>/client.py), so a service cannot tell how its peers are deployed. Calls go
round-robin over the instances the Topology lists and move on when one does not answer
(services/common/discovery.py: ServicePool).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

from services.common.discovery import ServicePool, Topology
from services.common.errors import BackendUnavailable
from services.common.ids import DeviceId, UserId
from services.common.model import ConversationEvent, Cursor, DeviceType, Message, Session, SessionStatus
from services.filter.client import GrpcFilterClient
from services.filter.service import FilterVerdict
from services.gateway.client import GrpcGatewayClient, GrpcGatewayDirectory
from services.router.client import GrpcRouterClient
from services.router.service import SendResult
from services.session.client import GrpcSessionClient
from services.session.service import LoginResult
from services.store.client import GrpcStoreClient
from services.store.service import AcceptResult, Reservation
from services.sync.client import GrpcSyncClient

__all__ = [
    "DiscoveredFilterClient",
    "DiscoveredRouterClient",
    "DiscoveredSessionClient",
    "DiscoveredStoreClient",
    "DiscoveredSyncClient",
    "TopologyGatewayDirectory",
]


class DiscoveredFilterClient:
    def __init__(self, topology: Topology) -> None:
        self.pool = ServicePool(topology, "filter", GrpcFilterClient)

    async def check(self, message: Message) -> FilterVerdict:
        return await self.pool.call(lambda c: c.check(message))

    async def apply_config(self, kind: str, document: dict) -> int:
        return await self.pool.call(lambda c: c.apply_config(kind, document))

    async def close(self) -> None:
        await self.pool.close()


class DiscoveredStoreClient:
    def __init__(self, topology: Topology) -> None:
        self.pool = ServicePool(topology, "store", GrpcStoreClient)

    async def accept(self, message: Message) -> AcceptResult:
        # Safe to resend on another instance: accept is idempotent per (sender, client_msg_id).
        return await self.pool.call(lambda c: c.accept(message))

    async def reserve(self, message: Message) -> Reservation:
        return await self.pool.call(lambda c: c.reserve(message))

    async def close(self) -> None:
        await self.pool.close()


class DiscoveredSessionClient:
    def __init__(self, topology: Topology) -> None:
        self.pool = ServicePool(topology, "session", GrpcSessionClient)

    async def login(self, user_id: UserId, device_id: DeviceId, *, device_type: DeviceType | str,
                    connection_id: str, gateway_id: str) -> LoginResult:
        return await self.pool.call(lambda c: c.login(user_id, device_id, device_type=device_type,
                                                      connection_id=connection_id, gateway_id=gateway_id))

    async def heartbeat(self, user_id: UserId, device_id: DeviceId, *, connection_id: str) -> Session:
        return await self.pool.call(lambda c: c.heartbeat(user_id, device_id, connection_id=connection_id))

    async def set_status(self, user_id: UserId, device_id: DeviceId, *, status: SessionStatus | str,
                         connection_id: str | None = None) -> Session:
        return await self.pool.call(lambda c: c.set_status(user_id, device_id, status=status,
                                                           connection_id=connection_id))

    async def logout(self, user_id: UserId, device_id: DeviceId, *, connection_id: str) -> bool:
        return await self.pool.call(lambda c: c.logout(user_id, device_id, connection_id=connection_id))

    async def routes(self, user_ids: Sequence[UserId]) -> dict[UserId, list[Session]]:
        return await self.pool.call(lambda c: c.routes(user_ids))

    async def presence(self, user_ids: Sequence[UserId]) -> dict[UserId, SessionStatus]:
        return await self.pool.call(lambda c: c.presence(user_ids))

    async def close(self) -> None:
        await self.pool.close()


class DiscoveredRouterClient:
    def __init__(self, topology: Topology) -> None:
        self.pool = ServicePool(topology, "router", GrpcRouterClient)

    async def admit(self, message: Message) -> Reservation:
        return await self.pool.call(lambda c: c.admit(message))

    async def send(self, message: Message) -> SendResult:
        return await self.pool.call(lambda c: c.send(message))

    async def on_delivered(self, user_id: str, conversation_id: str, seqs: Sequence[int]) -> None:
        await self.pool.call(lambda c: c.on_delivered(user_id, conversation_id, seqs))

    async def deliver(self, messages: Sequence[Message]) -> None:
        await self.pool.call(lambda c: c.deliver(messages))

    async def create_group(self, creator_id: str, conversation_id: str, members: Sequence[str]) -> list[str]:
        return await self.pool.call(lambda c: c.create_group(creator_id, conversation_id, members))

    async def join_group(self, user_id: str, conversation_id: str) -> None:
        await self.pool.call(lambda c: c.join_group(user_id, conversation_id))

    async def leave_group(self, user_id: str, conversation_id: str) -> None:
        await self.pool.call(lambda c: c.leave_group(user_id, conversation_id))

    async def close(self) -> None:
        await self.pool.close()


class DiscoveredSyncClient:
    def __init__(self, topology: Topology) -> None:
        self.pool = ServicePool(topology, "sync", GrpcSyncClient)

    async def sync(self, user_id: str, device_id: str, *, cursors: Mapping[str, Cursor] | None = None,
                   limit: int | None = None) -> dict[str, dict]:
        clients = self.pool.clients()
        if clients:  # acks go to the first instance's buffer: they count for this sync
            with contextlib.suppress(BackendUnavailable):
                await clients[0].flush()
        return await self.pool.call(lambda c: c.sync(user_id, device_id, cursors=cursors, limit=limit))

    def note_ack(self, user_id: str, device_id: str, conversation_id: str, *, seq: int = 0, event_id: int = 0,
                 after_seq: int | None = None, after_event_id: int | None = None) -> None:
        # Buffered and sent in batches by the chosen instance's client; with no instance
        # registered the ack is dropped, which only means a few messages are sent again.
        clients = self.pool.clients()
        if clients:
            clients[0].note_ack(user_id, device_id, conversation_id, seq=seq, event_id=event_id,
                                after_seq=after_seq, after_event_id=after_event_id)

    async def recall(self, user_id: str, msg_id: int) -> ConversationEvent:
        return await self.pool.call(lambda c: c.recall(user_id, msg_id))

    async def delete(self, user_id: str, msg_id: int) -> ConversationEvent:
        return await self.pool.call(lambda c: c.delete(user_id, msg_id))

    async def read(self, user_id: str, conversation_id: str, seq: int) -> ConversationEvent:
        return await self.pool.call(lambda c: c.read(user_id, conversation_id, seq))

    async def close(self) -> None:
        await self.pool.close()


class TopologyGatewayDirectory:
    """GatewayDirectory over the gateways in the topology; gateway id = instance id."""

    def __init__(self, topology: Topology) -> None:
        self._topology = topology
        self._directory = GrpcGatewayDirectory(topology.instances("gateway"))
        topology.on_change(self._refresh)

    def get(self, gateway_id: str) -> GrpcGatewayClient | None:
        return self._directory.get(gateway_id)

    async def _refresh(self) -> None:
        await self._directory.update(self._topology.instances("gateway"))

    async def close(self) -> None:
        await self._directory.close()
