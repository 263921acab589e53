"""How other services reach message-store: one interface, in-process or gRPC.

In-process the StoreService itself is the client; GrpcStoreClient is the same over store.proto.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import grpc.aio

from services.common.grpcio import DEFAULT_TIMEOUT_S, GrpcClientBase
from services.common.model import Message
from services.common.proto import store_pb2 as pb
from services.common.proto import store_pb2_grpc as pb_grpc
from services.common.proto_model import message_to_pb

from .types import AcceptResult, Reservation

__all__ = ["StoreClient", "GrpcStoreClient"]


@runtime_checkable
class StoreClient(Protocol):
    async def accept(self, message: Message) -> AcceptResult:
        """Log the message durably (once per sender + client_msg_id) and return its msg_id.
        Raises BackendUnavailable if the log cannot take it; the caller must not report STORED."""

    async def reserve(self, message: Message) -> Reservation:
        """The msg_id of (sender, client_msg_id): message.msg_id reserved if new, else the
        original one (`stored` if it is known to be in the log). Nothing is produced."""


class GrpcStoreClient(GrpcClientBase):
    """StoreClient over gRPC (store.proto); `channel` is a grpc.aio.Channel or a target.

    A deadline that expires is BackendUnavailable: the message may or may not be in the
    log, so the caller must not report STORED; the client's resend is deduplicated.
    """

    service_name = "store"
    stub_class = pb_grpc.StoreStub

    def __init__(self, channel: grpc.aio.Channel | str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        super().__init__(channel, timeout_s=timeout_s)
        # Every send crosses twice: concurrent sends share ReserveBatch / AcceptBatch calls.
        self._accept = self._batched("AcceptBatch")
        self._reserve = self._batched("ReserveBatch")

    async def accept(self, message: Message) -> AcceptResult:
        reply: pb.AcceptResponse = await self._accept(message_to_pb(message))
        return AcceptResult(reply.msg_id, reply.duplicate)

    async def reserve(self, message: Message) -> Reservation:
        reply: pb.ReserveResponse = await self._reserve(message_to_pb(message))
        return Reservation(reply.msg_id, reply.duplicate, reply.stored)
