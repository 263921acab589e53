"""How the core reaches gateways over gRPC: the delivery seam (services/delivery/seam.py).

The GatewayClient and GatewayDirectory Protocols live with delivery, which pushes through
them; this module implements them over gateway.proto. The core batches pushes per
gateway: one call carries many Push records, and a frame that goes to many devices is
serialized once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import grpc.aio

from services.common.grpcio import GrpcClientBase
from services.common.proto import gateway_pb2 as pb
from services.common.proto import gateway_pb2_grpc as pb_grpc
from services.delivery.seam import GatewayClient, GatewayDirectory, Push

__all__ = ["GatewayClient", "GatewayDirectory", "GrpcGatewayClient", "GrpcGatewayDirectory", "Push"]


class GrpcGatewayClient(GrpcClientBase):
    """GatewayClient over gRPC (gateway.proto), one long-lived channel per gateway.

    One Push RPC per delivery batch. Frames are sent once per distinct frame and referenced
    by index, so a group message fanned out to N devices costs one copy on the wire.
    """

    service_name = "gateway"
    stub_class = pb_grpc.GatewayStub

    def __init__(self, channel: grpc.aio.Channel | str, *, gateway_id: str, timeout_s: float = 2.0) -> None:
        # A short deadline: pushes are best effort (stored messages are synced on
        # reconnect) and fan-out retries a BackendUnavailable with backoff.
        super().__init__(channel, timeout_s=timeout_s)
        self.gateway_id = gateway_id
        self._what = f"gateway {gateway_id} at {self.target}"

    async def push(self, pushes: Sequence[Push]) -> list[str]:
        if not pushes:
            return []
        # A frame is keyed by what it is as well as its bytes: the same bytes are the same
        # message, but keeping the key whole means a frame never travels with another's seq.
        index: dict[tuple[bytes, str, int], int] = {}
        connection_ids: list[str] = []
        frame_index: list[int] = []
        for connection_id, conversation_id, seq, frame in pushes:
            # bytes cache their hash and compare by identity first, so delivery's one
            # frame object per message makes this lookup cheap.
            key = (frame, conversation_id, seq)
            position = index.get(key)
            if position is None:
                position = index[key] = len(index)
            connection_ids.append(connection_id)
            frame_index.append(position)
        request = pb.PushRequest(connection_ids=connection_ids, frame_index=frame_index,
                                 frames=[k[0] for k in index], frame_conversation_ids=[k[1] for k in index],
                                 frame_seqs=[k[2] for k in index])
        reply: pb.PushResponse = await self._call(self._stub.Push, request)
        return list(reply.gone)

    async def close_connection(self, connection_id: str, *, code: int, reason: str) -> None:
        request = pb.CloseRequest(connection_id=connection_id, code=code, reason=reason)
        await self._call(self._stub.CloseConnection, request)


class GrpcGatewayDirectory:
    """GatewayDirectory for split mode: gateway id -> address, one cached client each.

    Clients (and their channels) live as long as the address does, so the delivery path
    never pays a connection setup; `update` (fed from the topology) closes the clients of
    gateways that left or moved.
    """

    def __init__(self, addresses: Mapping[str, str] | None = None, *, timeout_s: float = 2.0) -> None:
        self._addresses: dict[str, str] = dict(addresses or {})
        self._clients: dict[str, GrpcGatewayClient] = {}
        self._timeout_s = timeout_s

    def get(self, gateway_id: str) -> GrpcGatewayClient | None:
        client = self._clients.get(gateway_id)
        if client is None:
            target = self._addresses.get(gateway_id)
            if target is None:
                return None
            client = GrpcGatewayClient(target, gateway_id=gateway_id, timeout_s=self._timeout_s)
            self._clients[gateway_id] = client
        return client

    async def update(self, addresses: Mapping[str, str]) -> None:
        """Replace the whole map; close clients whose gateway is gone or has a new address."""
        new = dict(addresses)
        stale = [g for g in self._clients if new.get(g) != self._addresses.get(g)]
        self._addresses = new
        for gateway_id in stale:
            await self._clients.pop(gateway_id).close()

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()
