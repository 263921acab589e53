"""How the store hands persisted batches on: one interface, in-process or gRPC.

In-process it is the Delivery object itself (services.delivery.service); over gRPC it is
the router's `Deliver` RPC (services.router.client.GrpcRouterClient.deliver), reached in
the split deployment through the pooled router proxy (services/wiring/discovered.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from services.common.model import Message

__all__ = ["DeliveryClient"]


@runtime_checkable
class DeliveryClient(Protocol):
    async def deliver(self, messages: Sequence[Message]) -> None:
        """Push a persisted batch to every member device and remember it for DELIVERED.

        `messages` have their seq, in seq order per conversation; the caller awaits each
        batch before handing over the next, so per-conversation order holds end to end.
        Best effort towards devices (an unreachable one syncs on reconnect); a message may
        be handed over again (a batch re-read around a rebalance): gateways drop seqs a
        connection already has."""
