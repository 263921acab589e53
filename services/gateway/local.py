"""The gateway in the core's own process: the in-process side of the delivery seam.

This adapter is kept (unlike the other services', whose objects are their own in-process
clients) because it really adapts: GatewayService.push is synchronous (it only queues
frames and must not yield between them), while GatewayClient.push is awaited, as it is
over gRPC or a batched channel to a gateway worker process. Replacing this module is all
it takes to move the monolith's gateways out of the core's process.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.delivery.seam import Push

from .service import GatewayService

__all__ = ["InProcessGatewayClient", "LocalGateways"]


class InProcessGatewayClient:
    """A GatewayClient that calls a GatewayService of this process directly."""

    def __init__(self, gateway: GatewayService) -> None:
        self._gateway = gateway
        self.gateway_id = gateway.gateway_id

    async def push(self, pushes: Sequence[Push]) -> list[str]:
        return self._gateway.push(pushes)

    async def close_connection(self, connection_id: str, *, code: int, reason: str) -> None:
        self._gateway.close_connection(connection_id, code=code, reason=reason)


class LocalGateways:
    """GatewayDirectory for gateways living in this process."""

    def __init__(self) -> None:
        self._clients: dict[str, InProcessGatewayClient] = {}

    def add(self, gateway: GatewayService) -> None:
        self._clients[gateway.gateway_id] = InProcessGatewayClient(gateway)

    def get(self, gateway_id: str) -> InProcessGatewayClient | None:
        return self._clients.get(gateway_id)
