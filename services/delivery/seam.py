"""The delivery seam: what the core hands a gateway, and what comes back.

Everything that crosses it is plain data, so the two sides need not share a process:

    core -> gateway   push(Sequence[Push])      Push = (connection_id, conversation_id, seq, frame)
                      close_connection(connection_id, code, reason)
    gateway -> core   the connection ids of a push that are gone (closed or unknown there)

`frame` is the finished WebSocket text frame (UTF-8 JSON bytes), serialized once by the
core however many connections get it; the gateway writes it as is and never parses it.
`conversation_id` and `seq` say what the frame is, so the gateway can keep its guarantee
that a connection is sent each (conversation, seq) at most once, in order (deliveries are
at least once: a store batch re-read around a consumer-group rebalance is delivered
again). `seq` is 0 for frames that are not messages (acks, events, read receipts): those
are never de-duplicated. No Message objects, callbacks or futures cross, and nothing is
awaited on the gateway's side of a push: it queues each frame on its connection and
answers at once.

Implementations of GatewayClient: the in-process one (services.gateway.local, the monolith),
the gRPC one (services.gateway.client, gateway.proto's Push; a distinct frame is sent once
per call and referenced by index). A gateway running in a worker process of its own next
to the core would be joined by a third, a batched channel carrying exactly these records.
The way back (a device's frames: send, acks, sync, groups) goes through the router, sync
and session clients, which have gRPC implementations already.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

__all__ = ["GatewayClient", "GatewayDirectory", "Push"]


class Push(NamedTuple):
    connection_id: str
    conversation_id: str
    seq: int  # the message's seq; 0 when the frame is not a message
    frame: bytes


@runtime_checkable
class GatewayClient(Protocol):
    gateway_id: str

    async def push(self, pushes: Sequence[Push]) -> list[str]:
        """Queue each frame on its connection; return the connection ids that are gone
        (closed or unknown here), so the caller can treat those devices as offline.

        A message push (seq > 0) whose (conversation_id, seq) the connection was already
        sent, or one below it, is dropped and not reported gone. InvalidInput for a batch
        that does not decode (gRPC)."""

    async def close_connection(self, connection_id: str, *, code: int, reason: str) -> None:
        """Close one connection with a WebSocket close code (4003: replaced by a newer
        login of the same device); unknown connection ids are not an error."""


class GatewayDirectory(Protocol):
    def get(self, gateway_id: str) -> GatewayClient | None:
        """The client of one gateway, None when no such gateway is known (it left)."""
