"""How the router reaches gateways: one interface, in-process or gRPC.

The router batches pushes per gateway: one call carries many (connection_id, frame) pairs,
and a frame that goes to many devices is serialized once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["GatewayClient", "GatewayDirectory"]


class GatewayClient(Protocol):
    gateway_id: str

    async def push(self, deliveries: Sequence[tuple[str, bytes]]) -> list[str]:
        """Queue each frame on its connection; return the connection ids that are gone
        (closed or unknown here), so the caller can treat those devices as offline."""

    async def close_connection(self, connection_id: str, *, code: int, reason: str) -> None: ...


class GatewayDirectory(Protocol):
    def get(self, gateway_id: str) -> GatewayClient | None: ...
